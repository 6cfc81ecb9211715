import CloudCore

/// Everything the filters and weighers may look at for one instance: Nova's `RequestSpec`
/// (flavor, `availability_zone`, image properties, `instance_group`, `retry`,
/// `ignore_hosts`, `requested_destination`).
public struct RequestSpec: Sendable, Equatable {
    /// The flavor: what the instance consumes on its host.
    public var resources: ResourceRequest
    /// The zone asked for (Nova's `availability_zone`); nil or empty means any zone.
    public var availabilityZone: String?
    /// The image's `architecture` property (Nova's `hw_architecture`); nil when unset.
    public var imageArchitecture: String?
    /// The image's `hypervisor_type` property (Nova's `img_hv_type`); nil when unset.
    public var imageHypervisorType: String?
    /// The server group the instance belongs to (Nova's `instance_group`).
    public var group: ServerGroupSpec?
    /// Hosts that already failed this build (Nova's `retry.hosts`, read by RetryFilter).
    public var triedHosts: Set<String>
    /// Hosts never to consider, e.g. a migration's source (Nova's `ignore_hosts`).
    public var ignoreHosts: Set<String>
    /// The only host to consider, filters still applied (Nova's `requested_destination`).
    public var requestedHost: String?
    /// The Glance image the instance boots (Nova's `image.id`), for the image cache weigher.
    public var imageID: String? = nil

    /// A spec; every placement constraint defaults to "none".
    public init(_ resources: ResourceRequest, availabilityZone: String? = nil,
                imageArchitecture: String? = nil, imageHypervisorType: String? = nil,
                group: ServerGroupSpec? = nil, triedHosts: Set<String> = [],
                ignoreHosts: Set<String> = [], requestedHost: String? = nil) {
        self.resources = resources; self.availabilityZone = availabilityZone
        self.imageArchitecture = imageArchitecture; self.imageHypervisorType = imageHypervisorType
        self.group = group; self.triedHosts = triedHosts; self.ignoreHosts = ignoreHosts
        self.requestedHost = requestedHost
    }

    /// Reads the image properties ImagePropertiesFilter honours from a Glance-style property
    /// map: `architecture` (or Nova's `hw_architecture`) and `hypervisor_type` (or `img_hv_type`).
    public mutating func setImageProperties(_ properties: [String: String]) {
        imageArchitecture = (properties["architecture"] ?? properties["hw_architecture"]).flatMap(Self.nonEmpty)
        imageHypervisorType = (properties["hypervisor_type"] ?? properties["img_hv_type"]).flatMap(Self.nonEmpty)
    }

    private static func nonEmpty(_ s: String) -> String? {
        let t = s.trimmingWhitespace()
        return t.isEmpty ? nil : t
    }
}

/// A server group's policy (Nova's `InstanceGroup.policy`). The hard ones are filters,
/// the soft ones weighers.
public enum ServerGroupPolicy: String, Sendable, CaseIterable {
    /// All members on one host (ServerGroupAffinityFilter).
    case affinity = "affinity"
    /// Members on different hosts (ServerGroupAntiAffinityFilter).
    case antiAffinity = "anti-affinity"
    /// Prefer the members' hosts (ServerGroupSoftAffinityWeigher).
    case softAffinity = "soft-affinity"
    /// Prefer hosts with fewer members (ServerGroupSoftAntiAffinityWeigher).
    case softAntiAffinity = "soft-anti-affinity"

    /// Parses what a user writes into a group's `policy` file (Nova's API names).
    /// Throws `EINVAL` naming the valid policies.
    public init(parsing text: String) throws(CloudError) {
        let t = text.trimmingWhitespace().lowercased()
        guard let p = ServerGroupPolicy(rawValue: t) else {
            throw CloudError.invalid("unknown server group policy '\(t)'; valid: "
                                     + Self.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self = p
    }
}

/// The part of a server group the scheduler needs (Nova's `InstanceGroup`): its policy and
/// the hosts its members already run on.
public struct ServerGroupSpec: Sendable, Equatable {
    /// The group's name, for messages.
    public var name: String
    /// Nova's `policy`.
    public var policy: ServerGroupPolicy
    /// One entry per placed member: the host it is on (Nova's `InstanceGroup.hosts`,
    /// repeated per member so a host's member count is known).
    public var hosts: [String]
    /// Nova's `max_server_per_host` rule for anti-affinity (default 1).
    public var maxServerPerHost: Int

    /// A group with `hosts` listing the host of each member already placed.
    public init(name: String, policy: ServerGroupPolicy, hosts: [String] = [], maxServerPerHost: Int = 1) {
        self.name = name; self.policy = policy; self.hosts = hosts; self.maxServerPerHost = maxServerPerHost
    }

    /// Members per host, counted once per decision.
    func memberCounts() -> [String: Int] {
        var counts: [String: Int] = [:]
        for h in hosts { counts[h, default: 0] += 1 }
        return counts
    }
}

/// Nova's `fields.Architecture.canonicalize` and `fields.HVType.canonicalize`: lower case,
/// with the historical aliases folded.
public enum ImageProperties {
    /// `amd64` → `x86_64`; `i386`/`i486`/`i586`/`x86_32` → `i686`; Debian's `arm64` →
    /// `aarch64` (not in Nova, but what `dpkg --print-architecture` says); otherwise lower case.
    public static func canonicalArchitecture(_ name: String) -> String {
        let n = name.trimmingWhitespace().lowercased()
        switch n {
        case "amd64": return "x86_64"
        case "i386", "i486", "i586", "x86_32", "x86_32p": return "i686"
        case "arm64": return "aarch64"
        default: return n
        }
    }

    /// `xapi` → `xen`; otherwise lower case (libvirt's `QEMU` becomes `qemu`).
    public static func canonicalHypervisorType(_ name: String) -> String {
        let n = name.trimmingWhitespace().lowercased()
        return n == "xapi" ? "xen" : n
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines (no Foundation).
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
