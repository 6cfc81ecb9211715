import CloudCore
import Foundation

extension Collections {
    /// `/instances/NAME/` (SPEC "An instance directory"): Nova servers. Every user may
    /// create instances (sticky, like /tmp: only the owner or root removes one).
    static let instances = Collection.of(
        "instances", notice: .instance, noun: "instance", mode: 0o1777,
        members: .directories(instanceFields, keys: [volumeLinks, instanceMetadata]),
        list: { ctx in ctx.api.instances.list(ctx.caller) },
        lookup: { ctx, name in ctx.api.instances.get(name, ctx.caller) },
        describe: { i in
            Member(name: i.name, identity: i.id, owner: i.ownerUID, created: i.created.timeIntervalSince1970, project: i.project,
                   leaving: i.taskState == .deleting, object: i)
        },
        entries: { ctx in
            ctx.api.instances.entries(ctx.caller).map { e in
                Member(name: e.name, identity: e.id, owner: e.ownerUID, created: e.created.timeIntervalSince1970, project: e.project,
                       leaving: e.deleting, object: e)
            }
        },
        create: { w, name throws(CloudError) in _ = try w.api.instances.create(name, w.caller) },
        // Accepted in every state; the directory stays (DELETING) until the engine is done.
        remove: { w, name throws(CloudError) in try w.api.instances.delete(name, w.caller) })

    private typealias I = InstanceInfo

    /// The files of an instance directory, in SPEC's order.
    static let instanceFields: [Field] = [
        .text("status", I.self) { $0.status.rawValue },
        .text("vm_state", I.self) { $0.vmState.rawValue },
        .text("task_state", I.self) { $0.taskState.rawValue },
        .text("power_state", I.self) { $0.powerState.rawValue },
        Field(name: "wait", access: .readOnly, style: .wait, read: { _, _ in [] }),
        .text("fault", I.self) { $0.fault },
        .text("host", I.self) { $0.host },
        .lines("ip", I.self) { $0.ips },
        .lines("mac", I.self) { $0.macs },
        Field(name: "console", access: .readOnly, style: .log({ ($0 as? I)?.consolePath ?? "" }), read: { _, _ in [] }),
        // The interactive serial console (`cloudfs console`): opening it attaches.
        Field(name: "tty", access: .readWrite, style: .console, read: { _, _ in [] }),
        .text("domain.xml", I.self) { $0.domainXML },
        .text("id", I.self) { $0.id },
        .text("created", I.self) { Timestamp.string($0.created) },
        // The desired image and flavor: before scheduling they change the pending build;
        // afterwards a new image rebuilds and a new flavor resizes.
        .text("image", I.self, .readWrite, { $0.image }) { w, name, v throws(CloudError) in try w.api.instances.change(name, .image(v), w.caller) },
        .text("flavor", I.self, .readWrite, { $0.flavor }) { w, name, v throws(CloudError) in try w.api.instances.change(name, .flavor(v), w.caller) },
        .text("project", I.self) { $0.project },
        .of("info.json", I.self, read: { i, _ in infoJSON(i) }),
        .text("group", I.self, .readWrite, { $0.group }) { w, name, v throws(CloudError) in try w.api.instances.change(name, .group(v), w.caller) },
        .of("ctl", I.self, .writeOnly, read: { _, _ in [] }) { w, name, v throws(CloudError) in
            try w.api.instances.perform(try w.parse { () throws(CloudError) in try InstanceAction(parsing: v) }, on: name, w.caller)
        },
        .of("actions", I.self, read: { i, ctx in Text.lines(ctx.api.instances.actions(i.name, ctx.caller)) }),
        .of("migrations", I.self, read: { i, ctx in Text.lines(ctx.api.instances.migrations(i.name, ctx.caller)) }),
        .of("migration", I.self, read: { i, ctx in Text.lines(ctx.api.instances.migrationProgress(i.name, ctx.caller)) }),
        emptied(.of("floating_ip", I.self, .readWrite, read: { i, ctx in
            Text.lines(ctx.api.floatingIPs.list(ctx.caller).filter { $0.instance == i.name }.map(\.address))
        }) { w, name, v throws(CloudError) in try w.api.instances.change(name, .floatingIP(FloatingIPRequest(parsing: v)), w.caller) }),
        severalLines(emptied(.lines("security_groups", I.self, .readWrite, { $0.securityGroups }) { w, name, v throws(CloudError) in
            try w.api.instances.change(name, .securityGroups(InstanceChange.securityGroupNames(v)), w.caller)
        })),
        .text("key_name", I.self) { $0.keyName },
        // cloud-init's user data: served by the metadata service at once, on the config
        // drive from the next rebuild (Nova's server update of user_data).
        atClose(emptied(.text("user_data", I.self, .readWrite, { $0.userData }) { w, name, v throws(CloudError) in
            try w.api.instances.change(name, .userData(v), w.caller)
        })),
        .text("ssh", I.self) { $0.ssh },
        // Nova's lock: empty, or who holds it (owner | admin); `lock`/`unlock` go to ctl.
        .text("locked", I.self) { $0.lockedBy },
    ]

    /// `instances/NAME/metadata/`: Nova's server metadata, one file per item (keys and
    /// values of at most 255 characters, 128 items).
    static let instanceMetadata = KeyDirectory(
        name: "metadata",
        entries: { ($0 as? I)?.metadata ?? [:] },
        set: { w, instance, key, value throws(CloudError) in
            try w.api.instances.change(instance, .metadata(key: key, value: value), w.caller)
        },
        isKey: { k in (try? LaunchRequest.validateMetadataKey(k)) != nil })

    /// `instances/NAME/volumes/`: the attached volumes as links `vdb ->
    /// ../../../volumes/data` (Nova's block device mappings). `ln -s ../../../volumes/data
    /// instances/NAME/volumes/` attaches (the cloud picks the device), `rm
    /// instances/NAME/volumes/vdb` detaches.
    static let volumeLinks = KeyDirectory(
        name: "volumes",
        entries: { obj in (obj as? I)?.volumes.mapValues { "../../../volumes/\($0)" } ?? [:] },
        set: { w, instance, key, target throws(CloudError) in
            if let target {
                let volume = target.split(separator: "/").last.map(String.init) ?? ""
                guard !volume.isEmpty else {
                    let e = CloudError.invalid("link to a volume: ln -s ../../../volumes/NAME \(w.path)")
                    w.api.recordRefusal(e, object: w.path, caller: w.caller)
                    throw e
                }
                try w.api.volumes.setInstance(volume, instance: instance, w.caller)
            } else {
                try w.api.volumes.detach(instance: instance, device: key, w.caller)
            }
        },
        isKey: { ObjectName.problem($0) == nil },
        kind: .links)

    /// `info.json`: the whole instance as one JSON object with sorted keys.
    static func infoJSON(_ i: InstanceInfo) -> [UInt8] {
        let object: [String: Any] = [
            "name": i.name, "id": i.id, "owner_uid": Int(i.ownerUID), "project": i.project,
            "status": i.status.rawValue, "vm_state": i.vmState.rawValue,
            "task_state": i.taskState.rawValue, "power_state": i.powerState.rawValue,
            "fault": i.fault, "host": i.host, "ips": i.ips, "macs": i.macs,
            "image": i.image, "flavor": i.flavor, "created": Timestamp.string(i.created),
            "domain_xml": i.domainXML, "console_path": i.consolePath, "group": i.group,
            "availability_zone": i.availabilityZone, "volumes": i.volumes,
            "key_name": i.keyName, "metadata": i.metadata, "ssh": i.ssh,
            "locked": i.lockedBy, "security_groups": i.securityGroups,
        ]
        return Text.json(object)
    }

    /// The field, with `: > file` applying its empty value.
    static func emptied(_ f: Field) -> Field { var f = f; f.emptiedByTruncate = true; return f }

    /// The field, taking values written in several WRITEs (bash's printf writes a
    /// multi-line value line by line).
    static func severalLines(_ f: Field) -> Field { var f = f; f.severalLines = true; return f }

    /// The field, taking a long value in several WRITEs and applying it whole at close.
    static func atClose(_ f: Field) -> Field { var f = severalLines(f); f.appliesAtClose = true; return f }
}
