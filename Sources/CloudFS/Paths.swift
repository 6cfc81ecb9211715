// CloudFS: the tree (SPEC "The tree"): path -> node, attribute files, waits, the events
// file, image uploads; implemented only against `CloudAPI`. This file names every node
// of the tree and knows which names may appear under which directory.
import CloudCore

/// Files of an instance directory (`/instances/NAME/...`).
enum InstanceField: String, CaseIterable, Sendable {
    case status, vmState = "vm_state", taskState = "task_state", powerState = "power_state"
    case wait, fault, host, ip, mac, console, domainXML = "domain.xml", id, created
    case image, flavor, project, infoJSON = "info.json", group, ctl, actions
    case floatingIP = "floating_ip"
    case securityGroups = "security_groups"

    /// `image`, `flavor` and `group` take writes (desired state before scheduling,
    /// `setInstanceField`); `ctl` takes actions (`instanceAction`); `floating_ip` takes
    /// `auto`, an address or nothing (`setInstanceFloatingIP`).
    var isWritable: Bool {
        self == .image || self == .flavor || self == .group || self == .ctl || self == .floatingIP || self == .securityGroups
    }
}

/// Files of `/images.d/NAME/` (and the `user.cloud.*` xattrs of `/images/NAME`).
enum ImageField: String, CaseIterable, Sendable {
    case id, status, format, size, virtualSize = "virtual_size", checksum, created
    case minRam = "min_ram", minDisk = "min_disk"
}

/// Files of `/flavors/NAME/` (all writable, `setFlavorField`).
enum FlavorField: String, CaseIterable, Sendable {
    case vcpus, ramMB = "ram_mb", diskGB = "disk_gb"
}

/// Files of `/hosts/NAME/`: read-only state, writable `uri` (registers the host) and
/// `availability_zone`, and a write-only `ctl` (enable | disable).
enum HostField: String, CaseIterable, Sendable {
    case uri, state, hypervisorType = "hypervisor_type", vcpus, ramMB = "ram_mb", diskGB = "disk_gb"
    case vcpusUsed = "vcpus_used", ramMBUsed = "ram_mb_used", diskGBUsed = "disk_gb_used", instances
    case availabilityZone = "availability_zone", ctl

    var isWritable: Bool { self == .uri || self == .availabilityZone || self == .ctl }
}

/// Files of `/groups/NAME/` (Nova server groups): `policy` (rw until it has members), `members` (ro).
enum GroupField: String, CaseIterable, Sendable {
    case policy, members
}

/// Files of `/networks/NAME/` (nova-network's networks columns): the fields are rw,
/// `leases` (`IP MAC instance` lines) and `free` (a count) are read-only. `project` is
/// VlanManager's association of a vlan network with a project (empty: unassigned).
enum NetworkFile: String, CaseIterable, Sendable {
    case mode, cidr, gateway, dns, bridge, bridgeInterface = "bridge_interface", vlan
    case dhcpStart = "dhcp_start", floatingRange = "floating_range", project, leases, free

    var isWritable: Bool { self != .leases && self != .free }
}

/// Files of `/floating-ips/ADDR/`: `instance` (rw: associate / disassociate), `pool`, `project`.
enum FloatingIPFile: String, CaseIterable, Sendable {
    case pool, instance, project
}

/// Files of `/security-groups/NAME/`: `rules` (rw, one `PROTO PORTS CIDR` per line).
enum SecurityGroupFile: String, CaseIterable, Sendable {
    case rules
}

/// `/scheduler/last`: the read-only file beside the option files of `/scheduler/`.
let schedulerLastName = "last"

/// One node of the tree, named by what it shows (not by an inode number).
enum Node: Hashable, Sendable {
    case root, readme, events
    case defaultsDir, defaultFile(DefaultKey)
    case configDir, configFile(ConfigKey)
    case imagesDir, image(String)
    case imagesDDir, imageInfoDir(String), imageInfoFile(String, ImageField)
    case imagePropertiesDir(String), imageProperty(String, String)
    case instancesDir, instanceDir(String), instanceFile(String, InstanceField)
    case flavorsDir, flavorDir(String), flavorFile(String, FlavorField)
    case hostsDir, hostDir(String), hostFile(String, HostField)
    /// `/scheduler/` and its files: one per option (rw) plus `last` (ro).
    case schedulerDir, schedulerFile(String)
    case groupsDir, groupDir(String), groupFile(String, GroupField)
    case networksDir, networkDir(String), networkFile(String, NetworkFile)
    case floatingIPsDir, floatingIPDir(String), floatingIPFile(String, FloatingIPFile)
    case securityGroupsDir, securityGroupDir(String), securityGroupFile(String, SecurityGroupFile)

    /// Names directly under the root, in listing order.
    static let rootNames = ["README", "events", "defaults", "images", "images.d", "instances", "flavors", "hosts", "scheduler", "groups", "config",
                            "networks", "floating-ips", "security-groups"]

    var isDirectory: Bool {
        switch self {
        case .root, .defaultsDir, .configDir, .imagesDir, .imagesDDir, .imageInfoDir, .imagePropertiesDir,
             .instancesDir, .instanceDir, .flavorsDir, .flavorDir, .hostsDir, .hostDir, .schedulerDir,
             .groupsDir, .groupDir, .networksDir, .networkDir, .floatingIPsDir, .floatingIPDir,
             .securityGroupsDir, .securityGroupDir: true
        default: false
        }
    }

    /// True for directories whose children are a fixed set of names: a missing name there
    /// can never appear, so the kernel may cache the miss (negative entry).
    var hasFixedChildren: Bool {
        switch self {
        case .root, .defaultsDir, .configDir, .imageInfoDir, .instanceDir, .flavorDir, .hostDir, .schedulerDir, .groupDir,
             .networkDir, .floatingIPDir, .securityGroupDir: true
        default: false
        }
    }

    /// Files that take writes of a value (`echo VALUE > file`), applied at write time.
    var isAttributeWritable: Bool {
        switch self {
        case .defaultFile, .configFile, .flavorFile, .imageProperty: true
        case .instanceFile(_, let f): f.isWritable
        case .hostFile(_, let f): f.isWritable
        case .schedulerFile(let k): k != schedulerLastName
        case .groupFile(_, let f): f == .policy
        case .networkFile(_, let f): f.isWritable
        case .floatingIPFile(_, let f): f == .instance
        case .securityGroupFile: true
        default: false
        }
    }

    /// Files whose empty value is an action (disassociate, no rules, unset): truncating
    /// them without writing (`: > file`, `echo -n > file`) applies the empty value.
    var isEmptiedByTruncate: Bool {
        switch self {
        case .instanceFile(_, .floatingIP), .instanceFile(_, .securityGroups), .floatingIPFile(_, .instance), .securityGroupFile: true
        case .networkFile(_, let f): f.isWritable
        default: false
        }
    }

    /// Values of several lines, which shells may write in several WRITEs.
    var takesSeveralLines: Bool {
        switch self {
        case .securityGroupFile, .networkFile(_, .dns), .instanceFile(_, .securityGroups): true
        default: false
        }
    }

    /// The child called `name`, when such a child can exist here (existence is checked
    /// against the cloud separately).
    func child(_ name: String) -> Node? {
        switch self {
        case .root:
            switch name {
            case "README": .readme
            case "events": .events
            case "defaults": .defaultsDir
            case "config": .configDir
            case "images": .imagesDir
            case "images.d": .imagesDDir
            case "instances": .instancesDir
            case "flavors": .flavorsDir
            case "hosts": .hostsDir
            case "scheduler": .schedulerDir
            case "groups": .groupsDir
            case "networks": .networksDir
            case "floating-ips": .floatingIPsDir
            case "security-groups": .securityGroupsDir
            default: nil
            }
        case .defaultsDir: DefaultKey(rawValue: name).map { .defaultFile($0) }
        case .configDir: ConfigKey(rawValue: name).map { .configFile($0) }
        case .imagesDir: ObjectName.problem(name) == nil ? .image(name) : nil
        case .imagesDDir: ObjectName.problem(name) == nil ? .imageInfoDir(name) : nil
        case .imageInfoDir(let i):
            name == "properties" ? .imagePropertiesDir(i) : ImageField(rawValue: name).map { .imageInfoFile(i, $0) }
        case .imagePropertiesDir(let i): Node.isPropertyKey(name) ? .imageProperty(i, name) : nil
        case .instancesDir: ObjectName.problem(name) == nil ? .instanceDir(name) : nil
        case .instanceDir(let i): InstanceField(rawValue: name).map { .instanceFile(i, $0) }
        case .flavorsDir: ObjectName.problem(name) == nil ? .flavorDir(name) : nil
        case .flavorDir(let f): FlavorField(rawValue: name).map { .flavorFile(f, $0) }
        case .hostsDir: ObjectName.problem(name) == nil ? .hostDir(name) : nil
        case .hostDir(let h): HostField(rawValue: name).map { .hostFile(h, $0) }
        case .schedulerDir: ObjectName.problem(name) == nil ? .schedulerFile(name) : nil
        case .groupsDir: ObjectName.problem(name) == nil ? .groupDir(name) : nil
        case .groupDir(let g): GroupField(rawValue: name).map { .groupFile(g, $0) }
        case .networksDir: ObjectName.problem(name) == nil ? .networkDir(name) : nil
        case .networkDir(let n): NetworkFile(rawValue: name).map { .networkFile(n, $0) }
        case .floatingIPsDir: ObjectName.problem(name) == nil ? .floatingIPDir(name) : nil
        case .floatingIPDir(let a): FloatingIPFile(rawValue: name).map { .floatingIPFile(a, $0) }
        case .securityGroupsDir: ObjectName.problem(name) == nil ? .securityGroupDir(name) : nil
        case .securityGroupDir(let g): SecurityGroupFile(rawValue: name).map { .securityGroupFile(g, $0) }
        default: nil
        }
    }

    /// Image property keys: a file name, at most 255 bytes (Glance's limit).
    static func isPropertyKey(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 255 && !name.hasPrefix(".") && !name.contains("/")
    }

    /// The parent directory and this node's name in it (nil for the root).
    var parentAndName: (Node, String)? {
        switch self {
        case .root: nil
        case .readme: (.root, "README")
        case .events: (.root, "events")
        case .defaultsDir: (.root, "defaults")
        case .defaultFile(let k): (.defaultsDir, k.rawValue)
        case .configDir: (.root, "config")
        case .configFile(let k): (.configDir, k.rawValue)
        case .imagesDir: (.root, "images")
        case .image(let i): (.imagesDir, i)
        case .imagesDDir: (.root, "images.d")
        case .imageInfoDir(let i): (.imagesDDir, i)
        case .imageInfoFile(let i, let f): (.imageInfoDir(i), f.rawValue)
        case .imagePropertiesDir(let i): (.imageInfoDir(i), "properties")
        case .imageProperty(let i, let k): (.imagePropertiesDir(i), k)
        case .instancesDir: (.root, "instances")
        case .instanceDir(let i): (.instancesDir, i)
        case .instanceFile(let i, let f): (.instanceDir(i), f.rawValue)
        case .flavorsDir: (.root, "flavors")
        case .flavorDir(let f): (.flavorsDir, f)
        case .flavorFile(let f, let x): (.flavorDir(f), x.rawValue)
        case .hostsDir: (.root, "hosts")
        case .hostDir(let h): (.hostsDir, h)
        case .hostFile(let h, let x): (.hostDir(h), x.rawValue)
        case .schedulerDir: (.root, "scheduler")
        case .schedulerFile(let k): (.schedulerDir, k)
        case .groupsDir: (.root, "groups")
        case .groupDir(let g): (.groupsDir, g)
        case .groupFile(let g, let f): (.groupDir(g), f.rawValue)
        case .networksDir: (.root, "networks")
        case .networkDir(let n): (.networksDir, n)
        case .networkFile(let n, let f): (.networkDir(n), f.rawValue)
        case .floatingIPsDir: (.root, "floating-ips")
        case .floatingIPDir(let a): (.floatingIPsDir, a)
        case .floatingIPFile(let a, let f): (.floatingIPDir(a), f.rawValue)
        case .securityGroupsDir: (.root, "security-groups")
        case .securityGroupDir(let g): (.securityGroupsDir, g)
        case .securityGroupFile(let g, let f): (.securityGroupDir(g), f.rawValue)
        }
    }

    /// The path inside the mount, e.g. `/instances/web1/status` (for events and errors).
    var path: String {
        guard let (parent, name) = parentAndName else { return "/" }
        let p = parent.path
        return (p == "/" ? "" : p) + "/" + name
    }

    /// The image this node belongs to, if any (used when an image is renamed).
    var imageName: String? {
        switch self {
        case .image(let i), .imageInfoDir(let i), .imageInfoFile(let i, _), .imagePropertiesDir(let i),
             .imageProperty(let i, _): i
        default: nil
        }
    }

    /// The same node for the image renamed to `newName`.
    func renamingImage(to newName: String) -> Node {
        switch self {
        case .image: .image(newName)
        case .imageInfoDir: .imageInfoDir(newName)
        case .imageInfoFile(_, let f): .imageInfoFile(newName, f)
        case .imagePropertiesDir: .imagePropertiesDir(newName)
        case .imageProperty(_, let k): .imageProperty(newName, k)
        default: self
        }
    }
}
