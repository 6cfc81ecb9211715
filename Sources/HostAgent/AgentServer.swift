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

/// An agent's address in `/hosts/NAME/agent`: `A.B.C.D:PORT`.
public enum AgentAddress {
    /// The default port (cloudfs's own; Neutron's agents talk AMQP, nothing to reuse).
    public static let defaultPort = 7355

    /// (host, port); `EINVAL` for anything but an IPv4 address with an optional port.
    public static func split(_ text: String) throws(CloudError) -> (String, Int) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count) else { throw CloudError.invalid("agent address '\(text.prefix(60))' is not A.B.C.D[:PORT]") }
        let octets = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4, octets.allSatisfy({ o in o.count <= 3 && !o.isEmpty && o.allSatisfy(\.isNumber) && Int(o)! <= 255 }) else {
            throw CloudError.invalid("agent address '\(text.prefix(60))': '\(parts[0].prefix(40))' is not an IPv4 address")
        }
        var port = defaultPort
        if parts.count == 2 {
            guard let p = Int(parts[1]), (1...65535).contains(p) else {
                throw CloudError.invalid("agent address '\(text.prefix(60))': the port must be 1-65535")
            }
            port = p
        }
        return (parts[0], port)
    }
}
