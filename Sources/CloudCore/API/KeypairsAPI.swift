import Foundation

extension ChangeNotice.Kind {
    public static let keypair = ChangeNotice.Kind(rawValue: "keypair")
}

/// A Nova key pair (os-keypairs): an OpenSSH public key a user registered under a name,
/// injected into the guests they launch with it. Key pairs belong to their user.
public struct KeypairInfo: Sendable, Equatable {
    public var name: String
    public var id: String
    public var ownerUID: UInt32
    /// The owner's user name ("" when the uid is not a registered user).
    public var owner: String
    /// The project the owner was in when it was made (its group in `ls -l`).
    public var project: String
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa` ...
    public var type: String
    /// Key size in bits (256 for ed25519).
    public var bits: Int
    /// OpenSSH's `SHA256:...` fingerprint, as `ssh-keygen -l` prints it.
    public var fingerprint: String
    /// The key as one OpenSSH line: `TYPE BASE64 [COMMENT]`.
    public var publicKey: String
    public var created: Date
    public init(name: String, id: String, ownerUID: UInt32, owner: String, project: String, type: String, bits: Int,
                fingerprint: String, publicKey: String, created: Date) {
        self.name = name; self.id = id; self.ownerUID = ownerUID; self.owner = owner; self.project = project
        self.type = type; self.bits = bits; self.fingerprint = fingerprint; self.publicKey = publicKey; self.created = created
    }
}

/// `/keypairs` (the keys, one file each) and `/keypairs.d` (their records). Every caller
/// sees and uses only their own key pairs, as in Nova.
public protocol KeypairsAPI: AnyObject, Sendable {
    func list(_ caller: Caller) -> [KeypairInfo]
    func get(_ name: String, _ caller: Caller) -> KeypairInfo?
    /// `cp key.pub /keypairs/NAME`: validates the OpenSSH public key (`EINVAL` naming the
    /// problem), counts it against `key_pairs`; `EEXIST` for another key under that name
    /// (Nova's key pairs cannot be changed: rm, then cp).
    func create(_ name: String, publicKey: String, _ caller: Caller) throws(CloudError)
    /// `rm /keypairs/NAME`. Instances launched with it keep their copy.
    func delete(_ name: String, _ caller: Caller) throws(CloudError)
}
