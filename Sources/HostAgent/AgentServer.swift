import CloudCore
import GRPCCore
import GRPCNIOTransportHTTP2Posix

/// Serves the HostAgent service on `address` (IPv4 `HOST:PORT`) with mutual TLS: the
/// agent presents `agent.pem` (issued for its host name by `AgentPKI`) and accepts only
/// clients whose certificate the cloud's CA (`ca.pem`) signed, i.e. the controller.
public enum AgentServer {
    /// Runs until the task is cancelled; `ready` gets the bound address once listening.
    public static func serve(address: String, pkiDirectory dir: String, handler: any HostAgentHandler,
                             ready: @Sendable (String) -> Void) async throws {
        let (host, port) = try AgentAddress.split(address)
        let security = HTTP2ServerTransport.Posix.TransportSecurity.mTLS(
            certificateChain: [.file(path: dir + "/agent.pem", format: .pem)],
            privateKey: .file(path: dir + "/agent-key.pem", format: .pem)) { tls in
            tls.trustRoots = .certificates([.file(path: dir + "/ca.pem", format: .pem)])
            tls.clientCertificateVerification = .noHostnameVerification
        }
        let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: host, port: port), transportSecurity: security)
        try await withGRPCServer(transport: transport, services: [HostAgentService(handler: handler)]) { server in
            if let bound = try await server.listeningAddress { ready("\(bound)") }
            try await Task.sleep(for: .seconds(Int64.max / 2_000_000_000))
        }
    }
}
