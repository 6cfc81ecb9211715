import CloudCore
import CloudStore
import Foundation

/// Nova's key pairs (os-keypairs): `/keypairs`. A key pair is its user's: each caller
/// lists, reads, uses and removes only their own, and two users may use the same name.
final class KeypairService: KeypairsAPI, @unchecked Sendable {
    // @unchecked: immutable after init; state lives in the core.
    let core: EngineCore

    init(core: EngineCore) { self.core = core }

    func list(_ caller: Caller) -> [KeypairInfo] {
        let mine = core.catalog.withLock { c in c.keypairs.values.filter { $0.ownerUid == Int64(caller.uid) } }
        return mine.map(info).sorted { $0.name < $1.name }
    }

    func get(_ name: String, _ caller: Caller) -> KeypairInfo? { record(name, of: caller.uid).map(info) }

    /// The caller's key pair by name (what a launch's `key_name` picks).
    func record(_ name: String, of uid: UInt32) -> KeypairRecord? {
        core.catalog.withLock { c in c.keypairs.values.first { $0.ownerUid == Int64(uid) && $0.name == name } }
    }

    private func info(_ k: KeypairRecord) -> KeypairInfo {
        let owner = core.directory.withLock { $0.userByUID[UInt32(k.ownerUid)] } ?? ""
        return KeypairInfo(name: k.name, id: k.id, ownerUID: UInt32(k.ownerUid), owner: owner, project: k.project, type: k.type,
                           bits: k.bits, fingerprint: k.fingerprint, publicKey: k.publicKey,
                           created: Date(timeIntervalSince1970: k.created))
    }

    func create(_ name: String, publicKey: String, _ caller: Caller) throws(CloudError) {
        let k = try core.refusing("keypair", name, caller) { () throws(CloudError) -> KeypairRecord? in
            try ObjectName.validate(name, kind: "key pair")
            try core.authorize(caller, .create, ObjectRef("keypair", name))
            let key = try SSHPublicKey.parse(publicKey)
            if let existing = record(name, of: caller.uid) {
                // Copying the same key again (cp twice) changes nothing.
                if existing.fingerprint == key.fingerprint { return nil }
                throw CloudError.exists("key pair '\(name)' already exists with another key (\(existing.fingerprint)); key pairs cannot be changed: rm it, then copy the new key")
            }
            let k = KeypairRecord(id: UUID().uuidString.lowercased(), name: name, ownerUid: Int64(caller.uid),
                                  project: try core.project(of: caller), type: key.type, bits: key.bits,
                                  fingerprint: key.fingerprint, publicKey: key.line, created: Date().timeIntervalSince1970)
            try core.write({ (s) throws(CloudError) in try s.insertKeypair(k) }) { c, _ in c.keypairs[k.id] = k }
            return k
        }
        guard let k else { return }
        core.events.append(kind: "keypair.created", object: name, ["type": k.type, "fingerprint": k.fingerprint,
                                                                  "uid": "\(caller.uid)", "project": k.project])
        core.announce(.keypair, name)
    }

    func delete(_ name: String, _ caller: Caller) throws(CloudError) {
        let k = try core.refusing("keypair", name, caller) { () throws(CloudError) -> KeypairRecord in
            guard let k = record(name, of: caller.uid) else { throw CloudError.notFound("no key pair named '\(name)'") }
            try core.write({ (s) throws(CloudError) in try s.deleteKeypair(id: k.id) }) { c, _ in c.keypairs[k.id] = nil }
            return k
        }
        core.events.append(kind: "keypair.deleted", object: name, ["uid": "\(caller.uid)", "project": k.project])
        core.announce(.keypair, name)
    }

    func load() throws(CloudError) {
        let all = try core.store.keypairs()
        core.catalog.withLock { c in for k in all { c.keypairs[k.id] = k } }
    }
}
