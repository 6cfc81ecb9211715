import CloudCore
import Foundation

/// The agents' certificate authority, as Nova's libvirt TLS setup and Neutron's
/// agent-to-server TLS have it: one CA per cloud (kept in the controller's state directory),
/// one certificate per compute host whose subject alternative name is the host's name in
/// `/hosts` (the controller checks it: a certificate stolen from one host does not answer
/// for another), and one client certificate for the controller (the agents accept only
/// peers the CA signed). Keys are P-256; files are PEM, keys mode 0600.
public struct AgentPKI: Sendable {
    /// `STATE/pki`: ca.pem, ca-key.pem, controller.pem, controller-key.pem.
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public var caFile: String { directory + "/ca.pem" }
    var caKeyFile: String { directory + "/ca-key.pem" }
    public var controllerCertFile: String { directory + "/controller.pem" }
    public var controllerKeyFile: String { directory + "/controller-key.pem" }

    var authority: CertificateAuthority {
        CertificateAuthority(certFile: caFile, keyFile: caKeyFile, commonName: "cloudfs agents CA")
    }

    /// The CA and the controller's certificate, made on first use (existing files are kept).
    public func ensureAuthority() throws(CloudError) {
        do {
            try CertificateAuthority.makeDirectory(directory)
            if try authority.ensure() { try? FileManager.default.removeItem(atPath: controllerCertFile) }
            if !FileManager.default.fileExists(atPath: controllerCertFile) {
                let (cert, key) = try authority.issue(.init(commonName: "cloudfs-controller", dnsNames: ["cloudfs-controller"],
                                                            usages: [.clientAuth]))
                try CertificateAuthority.write(key, to: controllerKeyFile, secret: true)
                try CertificateAuthority.write(cert, to: controllerCertFile, secret: false)
            }
        } catch let e as CloudError { throw e } catch {
            throw CloudError.io("cannot make the agents' certificate authority in \(directory): \(error)")
        }
    }

    /// Writes `ca.pem`, `agent.pem` and `agent-key.pem` for host `name` into `out`: what
    /// `cloudfs agent --pki OUT` needs on that host.
    public func issueHostCredentials(host name: String, into out: String) throws(CloudError) {
        try ObjectName.validate(name, kind: "host")
        try ensureAuthority()
        do {
            try CertificateAuthority.makeDirectory(out)
            let (cert, key) = try authority.issue(.init(commonName: name, dnsNames: [name], usages: [.serverAuth]))
            try CertificateAuthority.write(key, to: out + "/agent-key.pem", secret: true)
            try CertificateAuthority.write(cert, to: out + "/agent.pem", secret: false)
            try CertificateAuthority.write(authority.certificatePEM(), to: out + "/ca.pem", secret: false)
        } catch let e as CloudError { throw e } catch {
            throw CloudError.io("cannot issue host \(name)'s agent certificate into \(out): \(error)")
        }
    }
}
