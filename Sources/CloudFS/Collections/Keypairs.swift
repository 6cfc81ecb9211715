import CloudCore

extension Collections {
    /// `/keypairs/NAME`: Nova's key pairs, one OpenSSH public key per file. `cp key.pub`
    /// (or `echo KEY >`) registers one, `cat` prints it, `rm` removes it. Each user sees
    /// only their own (sticky directory: every user may add).
    static let keypairs = Collection.of(
        "keypairs", notice: .keypair, noun: "key pair", mode: 0o1777,
        members: .files { _ in keypairFile },
        list: { ctx in ctx.api.keypairs.list(ctx.caller) },
        lookup: { ctx, name in ctx.api.keypairs.get(name, ctx.caller) },
        describe: keypairMember,
        remove: { w, name throws(CloudError) in try w.api.keypairs.delete(name, w.caller) })

    /// The key file: the key line; a write registers it (the whole key, at offset 0).
    static let keypairFile = severalLines(Field.text("keypair", KeypairInfo.self, .readWrite, { $0.publicKey }) { w, name, v throws(CloudError) in
        try w.api.keypairs.create(name, publicKey: v, w.caller)
    })

    /// `/keypairs.d/NAME/`: each key pair's record, read-only (the images.d pattern).
    static let keypairRecords = Collection.of(
        "keypairs.d", notice: .keypair, noun: "key pair",
        members: .directories([
            .text("id", KeypairInfo.self) { $0.id },
            .text("type", KeypairInfo.self) { $0.type },
            .text("bits", KeypairInfo.self) { String($0.bits) },
            .text("fingerprint", KeypairInfo.self) { $0.fingerprint },
            .text("owner", KeypairInfo.self) { $0.owner.isEmpty ? String($0.ownerUID) : $0.owner },
            .text("project", KeypairInfo.self) { $0.project },
            .text("created", KeypairInfo.self) { Timestamp.string($0.created) },
            .text("public_key", KeypairInfo.self) { $0.publicKey },
        ]),
        list: { ctx in ctx.api.keypairs.list(ctx.caller) },
        lookup: { ctx, name in ctx.api.keypairs.get(name, ctx.caller) },
        describe: keypairMember)

    static func keypairMember(_ k: KeypairInfo) -> Member {
        Member(name: k.name, identity: k.id, owner: k.ownerUID, created: k.created.timeIntervalSince1970, project: k.project, object: k)
    }
}
