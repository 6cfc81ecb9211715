import CloudCore
import GRPCCore

/// The agent's gRPC service, `cloudfs.agent.v1.HostAgent`: `Status` (the heartbeat the
/// controller's health check sends) and `ApplyPlan` (the host's whole share of the network
/// plan). Unary calls with JSON messages (JSONCodec).
public enum AgentRPC {
    static let service = ServiceDescriptor(fullyQualifiedService: "cloudfs.agent.v1.HostAgent")
    static let status = MethodDescriptor(service: service, method: "Status", type: .unary)
    static let applyPlan = MethodDescriptor(service: service, method: "ApplyPlan", type: .unary)
}

/// What the agent does for each RPC (the `cloudfs agent` command implements it).
public protocol HostAgentHandler: Sendable {
    func status() async throws -> AgentStatus
    func apply(_ plan: AgentPlan) async throws -> AgentApplied
}

/// Registers a `HostAgentHandler` as the HostAgent service; a `CloudError` becomes a gRPC
/// status whose message is its reason.
struct HostAgentService: RegistrableRPCService {
    let handler: any HostAgentHandler

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(forMethod: AgentRPC.status, deserializer: JSONCodec<Nothing>(),
                               serializer: JSONCodec<AgentStatus>()) { request, _ in
            for try await _ in request.messages {}
            return StreamingServerResponse(single: ServerResponse(message: try await answer { try await handler.status() }))
        }
        router.registerHandler(forMethod: AgentRPC.applyPlan, deserializer: JSONCodec<AgentPlan>(),
                               serializer: JSONCodec<AgentApplied>()) { request, _ in
            var plan: AgentPlan?
            for try await m in request.messages { plan = m }
            guard let plan else { throw RPCError(code: .invalidArgument, message: "ApplyPlan needs a plan") }
            return StreamingServerResponse(single: ServerResponse(message: try await answer { try await handler.apply(plan) }))
        }
    }

    private func answer<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as CloudError {
            throw RPCError(code: e.errno == .invalid ? .invalidArgument : .internalError, message: e.reason)
        }
    }
}
