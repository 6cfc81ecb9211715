import CloudCore

/// The registry: every collection of the tree, in the root's listing order. Adding a
/// collection is its file under Collections/ and one line here.
enum Collections {
    static let all: [Collection] = [
        defaults,
        images,
        imageRecords,
        instances,
        flavors,
        hosts,
        scheduler,
        groups,
        config,
        networks,
        floatingIPs,
        securityGroups,
        users,
        projects,
        volumes,
        keypairs,
        keypairRecords,
    ]

    /// Collections only an admin may read (Nova's admin APIs): closed to others in `stat`.
    static let adminOnly: Set<CollectionID> = [hosts.id, scheduler.id, config.id]

    static let byID: [CollectionID: Collection] = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0) })

    static subscript(_ id: CollectionID) -> Collection? { byID[id] }

    /// The collections a notice of this kind concerns.
    static func concerned(by kind: ChangeNotice.Kind) -> [Collection] { all.filter { $0.notice == kind } }
}
