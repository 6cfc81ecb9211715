import Hummingbird
import NIOCore

/// A response body writer that keeps what is written (to read a rendered page in a test).
struct Collect: ResponseBodyWriter {
    final class Box: @unchecked Sendable { var buffer = ByteBuffer() }
    let box: Box
    mutating func write(_ buffer: ByteBuffer) async throws { var b = buffer; box.buffer.writeBuffer(&b) }
    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}

    /// The whole body of a response, as text.
    static func text(of body: ResponseBody) async throws -> String {
        let box = Box()
        try await body.write(Collect(box: box))
        return String(buffer: box.buffer)
    }
}
