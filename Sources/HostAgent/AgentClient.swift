import CloudCore
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix

/// The controller's gRPC client of the agents (`HostAgentDriver`): one TLS connection per
/// call, presenting the controller's certificate and accepting only an agent whose
/// certificate the cloud's CA issued for that host's name. Calls fail fast when the agent
/// cannot be reached (no wait-for-ready) and never take longer than `timeout`.
public final class GRPCHostAgents: HostAgentDriver {
    let pki: AgentPKI
    let timeout: Duration

    public init(pki: AgentPKI, timeout: Duration = .seconds(5)) { self.pki = pki; self.timeout = timeout }

    public func status(host: String, address: String) throws(CloudError) -> AgentStatus {
        try call(host: host, address: address, AgentRPC.status, Nothing(), "status")
    }

    public func apply(_ plan: AgentPlan, host: String, address: String) throws(CloudError) -> AgentApplied {
        try call(host: host, address: address, AgentRPC.applyPlan, plan, "network plan")
    }

    private func call<Req: Codable & Sendable, Resp: Codable & Sendable>(
        host: String, address: String, _ method: MethodDescriptor, _ request: Req, _ what: String) throws(CloudError) -> Resp {
        let (ip, port) = try AgentAddress.split(address)
        try pki.ensureAuthority()
        let box = ResultBox<Resp>()
        let done = DispatchSemaphore(value: 0)
        let pki = self.pki, timeout = self.timeout
        Task {
            do {
                let security = HTTP2ClientTransport.Posix.TransportSecurity.mTLS(
                    certificateChain: [.file(path: pki.controllerCertFile, format: .pem)],
                    privateKey: .file(path: pki.controllerKeyFile, format: .pem)) { tls in
                    tls.trustRoots = .certificates([.file(path: pki.caFile, format: .pem)])
                    tls.serverCertificateVerification = .fullVerification
                }
                // The host's name is the TLS server name: the agent's certificate must be its.
                let config = HTTP2ClientTransport.Posix.Config.defaults { $0.http2.authority = host }
                let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: ip, port: port),
                                                               transportSecurity: security, config: config)
                var options = CallOptions.defaults
                options.timeout = timeout
                options.waitForReady = false
                let resp: Resp = try await withGRPCClient(transport: transport) { client in
                    try await client.unary(request: ClientRequest(message: request), descriptor: method,
                                           serializer: JSONCodec<Req>(), deserializer: JSONCodec<Resp>(),
                                           options: options) { try $0.message }
                }
                box.set(.success(resp))
            } catch {
                box.set(.failure(error))
            }
            done.signal()
        }
        done.wait()
        switch box.get()! {
        case .success(let r): return r
        case .failure(let e):
            var reason = (e as? RPCError).map { "\($0.code): \($0.message)" } ?? "\(e)"
            if reason.contains("accepted the TCP connection but closed") {
                // gRPC reports a refused TLS handshake no better than this.
                reason += " (the TLS handshake failed: the agent's certificate must be issued for host \(host) by this cloud's CA, cloudfs agent-credentials)"
            }
            throw CloudError.io("agent of \(host) at \(address): \(what) failed: \(reason)")
        }
    }
}

/// A result handed from the async task to the waiting thread.
private final class ResultBox<T: Sendable>: @unchecked Sendable {
    // @unchecked: every access holds `lock`.
    private let lock = NSLock()
    private var value: Result<T, any Error>?
    func set(_ v: Result<T, any Error>) { lock.lock(); value = v; lock.unlock() }
    func get() -> Result<T, any Error>? { lock.lock(); defer { lock.unlock() }; return value }
}
