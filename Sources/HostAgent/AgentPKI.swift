import CloudCore
import Crypto
import Foundation
import SwiftASN1
import X509

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

    /// The CA and the controller's certificate, made on first use (existing files are kept).
    public func ensureAuthority() throws(CloudError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            if !FileManager.default.fileExists(atPath: caFile) || !FileManager.default.fileExists(atPath: caKeyFile) {
                let key = P256.Signing.PrivateKey()
                let name = try DistinguishedName { CommonName("cloudfs agents CA") }
                let cert = try Certificate(
                    version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
                    notValidBefore: Date().addingTimeInterval(-3600), notValidAfter: Date().addingTimeInterval(3650 * 86400),
                    issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
                    extensions: try Certificate.Extensions {
                        Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                        Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    },
                    issuerPrivateKey: .init(key))
                try write(try Certificate.PrivateKey(key).serializeAsPEM().pemString, to: caKeyFile, secret: true)
                try write(try cert.serializeAsPEM().pemString, to: caFile, secret: false)
                try? FileManager.default.removeItem(atPath: controllerCertFile)
            }
            if !FileManager.default.fileExists(atPath: controllerCertFile) {
                let (cert, key) = try issue(commonName: "cloudfs-controller", dnsNames: ["cloudfs-controller"], usage: .clientAuth)
                try write(key, to: controllerKeyFile, secret: true)
                try write(cert, to: controllerCertFile, secret: false)
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
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let (cert, key) = try issue(commonName: name, dnsNames: [name], usage: .serverAuth)
            try write(key, to: out + "/agent-key.pem", secret: true)
            try write(cert, to: out + "/agent.pem", secret: false)
            try write(String(contentsOfFile: caFile, encoding: .utf8), to: out + "/ca.pem", secret: false)
        } catch let e as CloudError { throw e } catch {
            throw CloudError.io("cannot issue host \(name)'s agent certificate into \(out): \(error)")
        }
    }

    /// A leaf certificate signed by the CA: (certificate PEM, key PEM).
    private func issue(commonName: String, dnsNames: [String], usage: ExtendedKeyUsage.Usage) throws -> (String, String) {
        let caCert = try Certificate(pemEncoded: String(contentsOfFile: caFile, encoding: .utf8))
        let caKey = try Certificate.PrivateKey(pemEncoded: String(contentsOfFile: caKeyFile, encoding: .utf8))
        let key = P256.Signing.PrivateKey()
        let cert = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-3600), notValidAfter: Date().addingTimeInterval(825 * 86400),
            issuer: caCert.subject, subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([usage])
                SubjectAlternativeNames(dnsNames.map { .dnsName($0) })
            },
            issuerPrivateKey: caKey)
        return (try cert.serializeAsPEM().pemString, try Certificate.PrivateKey(key).serializeAsPEM().pemString)
    }

    private func write(_ text: String, to path: String, secret: Bool) throws {
        let tmp = path + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(text.utf8),
                                             attributes: [.posixPermissions: secret ? 0o600 : 0o644]) else {
            throw CloudError.io("cannot write \(tmp)")
        }
        guard rename(tmp, path) == 0 else { throw CloudError.io("cannot rename \(tmp): errno \(errno)") }
    }
}
