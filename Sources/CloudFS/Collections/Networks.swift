import CloudCore

extension Collections {
    /// `/networks/NAME/`: nova-network's networks (admin only): its fields rw, `leases`
    /// (`IP MAC instance` lines) and `free` (a count) read-only.
    static let networks = Collection.of(
        "networks", notice: .network, noun: "network",
        members: .directories(NetworkField.allCases.map { f in
            var field = Field.of(f.rawValue, NetworkInfo.self, .readWrite, read: { n, _ in Array((n.fields[f.rawValue] ?? "").utf8) }) {
                w, name, v throws(CloudError) in try w.api.networks.change(name, f, v, w.caller)
            }
            field.emptiedByTruncate = true
            field.severalLines = f == .dns
            return field
        } + [
            .lines("leases", NetworkInfo.self) { $0.leases },
            .text("free", NetworkInfo.self) { String($0.free) },
        ]),
        list: { ctx in ctx.api.networks.list(ctx.caller) },
        lookup: { ctx, name in ctx.api.networks.get(name, ctx.caller) },
        describe: { n in Member(name: n.name, object: n) },
        create: { w, name throws(CloudError) in try w.api.networks.create(name, w.caller) },
        remove: { w, name throws(CloudError) in try w.api.networks.delete(name, w.caller) })

    /// `/floating-ips/ADDR/`: nova-network's floating IPs: `instance` (rw: associate, or
    /// empty to disassociate), `pool`, `project`. Every user allocates (sticky directory).
    static let floatingIPs = Collection.of(
        "floating-ips", notice: .floatingIP, noun: "floating IP", mode: 0o1777,
        members: .directories([
            .text("pool", FloatingIPInfo.self) { $0.pool },
            emptied(.text("instance", FloatingIPInfo.self, .readWrite, { $0.instance }) { w, address, v throws(CloudError) in
                try w.api.floatingIPs.associate(address, instance: v, w.caller)
            }),
            .text("project", FloatingIPInfo.self) { $0.project },
        ]),
        list: { ctx in ctx.api.floatingIPs.list(ctx.caller) },
        lookup: { ctx, address in ctx.api.floatingIPs.get(address, ctx.caller) },
        describe: { f in Member(name: f.address, owner: f.ownerUID, project: f.project, object: f) },
        create: { w, address throws(CloudError) in try w.api.floatingIPs.create(address, w.caller) },
        remove: { w, address throws(CloudError) in try w.api.floatingIPs.delete(address, w.caller) })

    /// `/security-groups/NAME/`: Nova security groups: `rules` (rw, one `PROTO PORTS CIDR`
    /// per line). Every user makes groups (sticky directory).
    static let securityGroups = Collection.of(
        "security-groups", notice: .securityGroup, noun: "security group", mode: 0o1777,
        members: .directories([
            severalLines(emptied(.of("rules", SecurityGroupInfo.self, .readWrite, read: { g, _ in Array(g.rules.utf8) }) {
                w, name, v throws(CloudError) in try w.api.securityGroups.setRules(name, v, w.caller)
            })),
        ]),
        list: { ctx in ctx.api.securityGroups.list(ctx.caller) },
        lookup: { ctx, name in ctx.api.securityGroups.get(name, ctx.caller) },
        // The cloud-wide `default` group (project "") belongs to no project.
        describe: { g in Member(name: g.name, owner: g.ownerUID, project: g.project.isEmpty ? nil : g.project, object: g) },
        create: { w, name throws(CloudError) in try w.api.securityGroups.create(name, w.caller) },
        remove: { w, name throws(CloudError) in try w.api.securityGroups.delete(name, w.caller) })
}
