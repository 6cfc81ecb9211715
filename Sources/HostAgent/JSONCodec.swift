import Foundation
import GRPCCore

/// gRPC's message coding for the agent's RPCs: JSON instead of protobuf. The messages are
/// CloudCore's Codable types, so no generated code and no protoc plugin (whose first build
/// costs minutes) are needed; gRPC itself (framing, deadlines, status codes, HTTP/2, TLS)
/// is unchanged.
struct JSONCodec<Message: Codable & Sendable>: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: Message) throws -> Bytes {
        let data = try JSONEncoder().encode(message)
        return Bytes(Array(data))
    }

    func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> Message {
        let data = bytes.withUnsafeBytes { Data($0) }
        return try JSONDecoder().decode(Message.self, from: data)
    }
}

/// An empty request.
struct Nothing: Codable, Sendable {}
