import CloudCore

extension Collections {
    /// `/flavors/NAME/`: Nova flavors (mkdir + writes create one; admin only).
    static let flavors = Collection.of(
        "flavors", notice: .flavor, noun: "flavor",
        members: .directories(["vcpus", "ram_mb", "disk_gb"].map { field in
            .text(field, Flavor.self, .readWrite, { f in String(field == "vcpus" ? f.vcpus : field == "ram_mb" ? f.ramMB : f.diskGB) }) {
                w, name, v throws(CloudError) in try w.api.flavors.change(name, try w.parse { () throws(CloudError) in try FlavorChange(field: field, parsing: v) }, w.caller)
            }
        }),
        list: { ctx in ctx.api.flavors.list(ctx.caller) },
        lookup: { ctx, name in ctx.api.flavors.get(name, ctx.caller) },
        describe: { f in Member(name: f.name, object: f) },
        create: { w, name throws(CloudError) in try w.api.flavors.create(name, w.caller) },
        remove: { w, name throws(CloudError) in try w.api.flavors.delete(name, w.caller) })

    private typealias H = HostInfo

    /// `/hosts/NAME/`: Nova compute nodes: read-only state and `fault`, writable `uri`
    /// (registers the host), `availability_zone` and `agent` (its `cloudfs agent`, whose
    /// `tunnel_ip` and `segments` are shown), and a write-only `ctl` (enable | disable | evacuate).
    static let hosts = Collection.of(
        "hosts", notice: .host, noun: "host",
        members: .directories([
            .text("uri", H.self, .readWrite, { $0.uri }) { w, name, v throws(CloudError) in try w.api.hosts.change(name, .uri(v), w.caller) },
            .text("state", H.self) { $0.state.rawValue },
            .text("hypervisor_type", H.self) { $0.hypervisorType },
            .text("vcpus", H.self) { String($0.vcpus) },
            .text("ram_mb", H.self) { String($0.ramMB) },
            .text("disk_gb", H.self) { String($0.diskGB) },
            .text("vcpus_used", H.self) { String($0.vcpusUsed) }.counting(),
            .text("ram_mb_used", H.self) { String($0.ramMBUsed) }.counting(),
            .text("disk_gb_used", H.self) { String($0.diskGBUsed) }.counting(),
            .lines("instances", H.self) { $0.instances }.counting(),
            .text("storage", H.self) { $0.storage },
            .lines("images", H.self) { $0.cachedImages },
            .text("availability_zone", H.self, .readWrite, { $0.availabilityZone }) { w, name, v throws(CloudError) in
                try w.api.hosts.change(name, .availabilityZone(v), w.caller)
            },
            .text("agent", H.self, .readWrite, { $0.agent }) { w, name, v throws(CloudError) in
                try w.api.hosts.change(name, .agent(v), w.caller)
            },
            .text("fault", H.self) { $0.fault },
            .text("tunnel_ip", H.self) { $0.tunnelIP },
            .lines("segments", H.self) { $0.segments },
            .of("ctl", H.self, .writeOnly, read: { _, _ in [] }) { w, name, v throws(CloudError) in
                try w.api.hosts.perform(try w.parse { () throws(CloudError) in try HostAction(parsing: v) }, on: name, w.caller)
            },
        ]),
        list: { ctx in ctx.api.hosts.list(ctx.caller) },
        lookup: { ctx, name in ctx.api.hosts.get(name, ctx.caller) },
        describe: { h in Member(name: h.name, object: h) },
        create: { w, name throws(CloudError) in try w.api.hosts.create(name, w.caller) },
        remove: { w, name throws(CloudError) in try w.api.hosts.delete(name, w.caller) })

    /// `/groups/NAME/`: Nova server groups: `policy` (rw until it has members), `members`
    /// (ro). Every user may create server groups for their own instances.
    static let groups = Collection.of(
        "groups", notice: .group, noun: "group", mode: 0o1777,
        members: .directories([
            .text("policy", GroupInfo.self, .readWrite, { $0.policy }) { w, name, v throws(CloudError) in try w.api.groups.setPolicy(name, v, w.caller) },
            .lines("members", GroupInfo.self) { $0.members },
        ]),
        list: { ctx in ctx.api.groups.list(ctx.caller) },
        lookup: { ctx, name in ctx.api.groups.get(name, ctx.caller) },
        describe: { g in Member(name: g.name, owner: g.ownerUID, project: g.project, object: g) },
        create: { w, name throws(CloudError) in try w.api.groups.create(name, w.caller) },
        remove: { w, name throws(CloudError) in try w.api.groups.delete(name, w.caller) })
}
