import CloudCore
import Crypto
import Foundation

/// An OpenSSH public key line (`TYPE BASE64 [COMMENT]`, RFC 4253 §6.6 wire format inside
/// the base64), checked the way Nova's keypair API checks an imported key: it must parse,
/// the type named outside must be the one inside, and its size must be acceptable
/// (ed25519, ecdsa on NIST P-256/384/521, RSA of at least 2048 bits).
struct SSHPublicKey: Sendable, Equatable {
    var type: String
    var bits: Int
    var blob: [UInt8]
    var comment: String

    /// The line as it is stored and injected: `TYPE BASE64 COMMENT`.
    var line: String {
        let b64 = Data(blob).base64EncodedString()
        return comment.isEmpty ? "\(type) \(b64)" : "\(type) \(b64) \(comment)"
    }

    /// OpenSSH's fingerprint: `SHA256:` and the unpadded base64 of the blob's SHA-256.
    var fingerprint: String {
        var b64 = Data(SHA256.hash(data: blob)).base64EncodedString()
        while b64.hasSuffix("=") { b64.removeLast() }
        return "SHA256:" + b64
    }

    static let curves = ["ecdsa-sha2-nistp256": ("nistp256", 256), "ecdsa-sha2-nistp384": ("nistp384", 384),
                         "ecdsa-sha2-nistp521": ("nistp521", 521)]

    /// Parses one key line; `EINVAL` naming what is wrong.
    static func parse(_ text: String) throws(CloudError) -> SSHPublicKey {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard let line = lines.first else { throw .invalid("the key pair file is empty: give an OpenSSH public key (ssh-keygen makes one in ~/.ssh/*.pub)") }
        if line.hasPrefix("-----BEGIN") {
            throw .invalid("this is a PEM file (a private key?); give the OpenSSH public key line (ssh-keygen -y -f KEY prints it)")
        }
        if lines.count > 1 { throw .invalid("a key pair holds one public key, not \(lines.count) lines") }
        let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true).map(String.init)
        guard parts.count >= 2 else { throw .invalid("not an OpenSSH public key: expected 'TYPE BASE64 [COMMENT]'") }
        let type = parts[0]
        let supported = ["ssh-ed25519", "ssh-rsa"] + curves.keys.sorted()
        guard supported.contains(type) else {
            throw .invalid("key type '\(type.prefix(40))' is not accepted (use one of \(supported.joined(separator: ", ")))")
        }
        guard let data = Data(base64Encoded: parts[1]) else { throw .invalid("the key's base64 does not decode") }
        var r = WireReader(Array(data))
        guard let inner = r.string().map({ String(decoding: $0, as: UTF8.self) }) else { throw .invalid("the key data is truncated") }
        guard inner == type else { throw .invalid("the key says '\(type)' but its data is a '\(inner.prefix(40))' key") }
        let bits: Int
        switch type {
        case "ssh-ed25519":
            guard let k = r.string(), k.count == 32 else { throw .invalid("an ed25519 key must hold 32 bytes") }
            bits = 256
        case "ssh-rsa":
            guard let e = r.string(), let n = r.string(), !e.isEmpty, !n.isEmpty else { throw .invalid("the RSA key data is truncated") }
            bits = Self.bitLength(n)
            if bits < 2048 { throw .invalid("RSA keys must be at least 2048 bits; this one has \(bits)") }
        default:
            let (curve, size) = curves[type]!
            guard let c = r.string(), String(decoding: c, as: UTF8.self) == curve else {
                throw .invalid("the ECDSA key's curve does not match its type \(type)")
            }
            guard let q = r.string(), q.first == 0x04, q.count == 1 + 2 * ((size + 7) / 8) else {
                throw .invalid("the ECDSA key's point is not an uncompressed \(curve) point")
            }
            bits = size
        }
        guard r.atEnd else { throw .invalid("the key data has trailing bytes") }
        let comment = parts.count > 2 ? parts[2] : ""
        if comment.unicodeScalars.contains(where: { $0.value < 0x20 }) { throw .invalid("the key's comment has control characters") }
        return SSHPublicKey(type: type, bits: bits, blob: Array(data), comment: comment)
    }

    /// Bits of an SSH mpint (big-endian, a leading zero byte keeps it positive).
    static func bitLength(_ n: [UInt8]) -> Int {
        guard let first = n.firstIndex(where: { $0 != 0 }) else { return 0 }
        return (n.count - first - 1) * 8 + (8 - n[first].leadingZeroBitCount)
    }
}

/// Reads RFC 4251 `string`s (a 32-bit big-endian length, then the bytes).
private struct WireReader {
    let bytes: [UInt8]
    var at = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var atEnd: Bool { at == bytes.count }
    mutating func string() -> [UInt8]? {
        guard bytes.count - at >= 4 else { return nil }
        let n = bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) }
        guard n >= 0, bytes.count - at - 4 >= n else { return nil }
        defer { at += 4 + n }
        return Array(bytes[at + 4..<at + 4 + n])
    }
}
