import CloudCore
import Crypto
import Foundation
import SwiftASN1
import X509

/// One certificate authority kept as two PEM files (certificate and 0600 key), and the
/// leaf certificates it signs: P-256 keys, ECDSA-SHA256 signatures. `AgentPKI` (the agents'
/// gRPC) and `LibvirtPKI` (libvirt's own TLS transport) each keep one, so a certificate
/// issued for one purpose is never accepted by the other.
struct CertificateAuthority: Sendable {
    let certFile: String
    let keyFile: String
    let commonName: String

    /// What a leaf certificate names and may do.
    struct Leaf {
        var commonName: String
        var dnsNames: [String] = []
        /// IPv4 or IPv6 literals, for peers reached by address (libvirt checks the URI's host).
        var ipAddresses: [String] = []
        var usages: [ExtendedKeyUsage.Usage]
        /// Also mark the key for key encipherment: libvirt refuses leaf certificates
        /// whose key usage lacks it (GnuTLS's checks in virNetTLSContext).
        var keyEncipherment = false
    }

    var exists: Bool { FileManager.default.fileExists(atPath: certFile) && FileManager.default.fileExists(atPath: keyFile) }

    /// Makes the CA unless both files exist; true when it made a new one.
    @discardableResult
    func ensure() throws -> Bool {
        if exists { return false }
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName(commonName) }
        let cert = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-3600), notValidAfter: Date().addingTimeInterval(3650 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(key))
        try Self.write(try Certificate.PrivateKey(key).serializeAsPEM().pemString, to: keyFile, secret: true)
        try Self.write(try cert.serializeAsPEM().pemString, to: certFile, secret: false)
        return true
    }

    /// The CA's certificate, PEM.
    func certificatePEM() throws -> String { try String(contentsOfFile: certFile, encoding: .utf8) }

    /// A leaf certificate signed by the CA: (certificate PEM, key PEM).
    func issue(_ leaf: Leaf) throws -> (certificate: String, key: String) {
        let caCert = try Certificate(pemEncoded: certificatePEM())
        let caKey = try Certificate.PrivateKey(pemEncoded: String(contentsOfFile: keyFile, encoding: .utf8))
        let key = P256.Signing.PrivateKey()
        var names: [GeneralName] = leaf.dnsNames.map { .dnsName($0) }
        for ip in leaf.ipAddresses {
            guard let bytes = Self.addressBytes(ip) else { throw CloudError.invalid("'\(ip)' is not an IP address") }
            names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
        }
        let cert = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-3600), notValidAfter: Date().addingTimeInterval(825 * 86400),
            issuer: caCert.subject, subject: try DistinguishedName { CommonName(leaf.commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: leaf.keyEncipherment))
                try ExtendedKeyUsage(leaf.usages)
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: caKey)
        return (try cert.serializeAsPEM().pemString, try Certificate.PrivateKey(key).serializeAsPEM().pemString)
    }

    /// The 4 or 16 network-order bytes of an address literal.
    static func addressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// Writes through a temporary file and a rename, so a reader sees the old file or the new.
    static func write(_ text: String, to path: String, secret: Bool) throws {
        let tmp = path + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(text.utf8),
                                             attributes: [.posixPermissions: secret ? 0o600 : 0o644]) else {
            throw CloudError.io("cannot write \(tmp)")
        }
        guard rename(tmp, path) == 0 else { throw CloudError.io("cannot rename \(tmp): errno \(errno)") }
    }

    static func makeDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
    }
}
