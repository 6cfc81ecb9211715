import Foundation

/// A collection of the tree shown as one table with its create and delete (Horizon's
/// Flavors, Hosts, Networks, Floating IPs, Security Groups, Volumes, Key Pairs, Server
/// Groups, Projects, Users panels): which directory lists the members, which files make
/// the columns, and what a create writes after its `mkdir`.
struct CollectionSpec: Sendable {
    let slug: String
    let title: String
    /// What the panel is, in OpenStack's words (shown under the title).
    let concept: String
    /// The directory whose entries are the members.
    let path: String
    /// Where each member's fields are read: `path` itself, or a records directory such as
    /// `keypairs.d`.
    let records: String
    let columns: [String]
    let create: [FormField]
    /// Members are files (`rm` deletes, a create writes the file) rather than directories.
    let memberIsFile: Bool
    /// The name field's hint (a floating IP's name is its address).
    let nameHint: String

    init(_ slug: String, _ title: String, concept: String, path: String? = nil, records: String? = nil,
         columns: [String], create: [FormField] = [], memberIsFile: Bool = false, nameHint: String = "name") {
        self.slug = slug; self.title = title; self.concept = concept
        self.path = path ?? slug; self.records = records ?? path ?? slug
        self.columns = columns; self.create = create; self.memberIsFile = memberIsFile; self.nameHint = nameHint
    }

    static let all: [CollectionSpec] = [
        .init("flavors", "Flavors", concept: "Nova flavors: the sizes instances are built with (admins create them)",
              columns: ["vcpus", "ram_mb", "disk_gb"],
              create: [.init("vcpus", "1"), .init("ram_mb", "512"), .init("disk_gb", "1")]),
        .init("hosts", "Hosts", concept: "Nova compute hosts: libvirt connections the scheduler places instances on",
              columns: ["state", "hypervisor_type", "vcpus", "vcpus_used", "ram_mb", "ram_mb_used", "disk_gb", "disk_gb_used", "availability_zone"],
              create: [.init("uri", "test:///default")]),
        .init("networks", "Networks", concept: "nova-network networks: fixed IP ranges and how guests reach them",
              columns: ["mode", "cidr", "gateway", "bridge", "vlan", "vni", "project", "free"],
              create: [.init("mode", "flatdhcp"), .init("cidr", "10.1.0.0/24")]),
        .init("floating-ips", "Floating IPs", concept: "nova-network floating IPs: public addresses associated with instances",
              columns: ["pool", "instance", "project"], nameHint: "address, e.g. 172.24.4.10"),
        .init("security-groups", "Security Groups", concept: "Nova security groups: the traffic let in, one rule per line",
              columns: ["rules"], create: [.init("rules", "tcp 22 0.0.0.0/0", multiline: true)]),
        .init("groups", "Server Groups", concept: "Nova server groups: placement policies for their members",
              columns: ["policy", "members"], create: [.init("policy", "anti-affinity")]),
        .init("volumes", "Volumes", concept: "Cinder volumes: persistent block storage attached to instances",
              columns: ["status", "size_gb", "instance", "device", "backend", "project", "created", "fault"],
              create: [.init("size_gb", "1"), .init("source", "image NAME | volume NAME | snapshot VOL/SNAP")]),
        .init("keypairs", "Key Pairs", concept: "Nova key pairs: OpenSSH public keys put into your instances (yours only)",
              records: "keypairs.d", columns: ["type", "bits", "fingerprint", "created"],
              create: [.init("public_key", "ssh-ed25519 AAAA… you@host", multiline: true)], memberIsFile: true),
        .init("projects", "Projects", concept: "Keystone projects: who owns what, with quotas (admins create them)",
              columns: ["gid", "members"]),
        .init("users", "Users", concept: "Keystone users: local accounts and their roles (admins register them)",
              columns: ["uid", "project", "projects"]),
    ]

    static func named(_ slug: String) -> CollectionSpec? { all.first { $0.slug == slug } }
}

/// One input of a create form: the member file it is written to after the `mkdir`.
struct FormField: Sendable {
    let name: String
    let placeholder: String
    let multiline: Bool
    init(_ name: String, _ placeholder: String, multiline: Bool = false) {
        self.name = name; self.placeholder = placeholder; self.multiline = multiline
    }
}

/// The table a collection page renders.
struct CollectionTable: Sendable {
    let spec: CollectionSpec
    let rows: [Row]
    /// Why the collection cannot be listed (EACCES for non-admins on /hosts ...), if so.
    let problem: String?

    struct Row: Sendable {
        let name: String
        let cells: [Cell]
    }
    struct Cell: Sendable {
        let lines: [String]
    }

    static func load(_ spec: CollectionSpec, tree: MountedTree) -> CollectionTable {
        let names: [String]
        do throws(TreeError) { names = try tree.list(spec.path) } catch {
            return CollectionTable(spec: spec, rows: [], problem: error.description)
        }
        let rows = names.map { name in
            Row(name: name, cells: spec.columns.map { col in
                Cell(lines: tree.value(spec.records + "/" + name + "/" + col).split(separator: "\n").map(String.init))
            })
        }
        return CollectionTable(spec: spec, rows: rows, problem: nil)
    }
}
