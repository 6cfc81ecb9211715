/// Keystone's roles, as an implied chain: each role can do what the ones below it can
/// (reader < member < manager < admin).
public enum Role: String, Sendable, Codable, CaseIterable, Comparable {
    /// Sees the project's objects.
    case reader
    /// Creates, acts on and deletes the project's objects.
    case member
    /// Also edits the project's `members`.
    case manager
    /// Everything, everywhere (Keystone's admin role is cloud-wide).
    case admin

    private var rank: Int { Role.allCases.firstIndex(of: self)! }
    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
}

/// One limit of a project's quota (Nova's and Cinder's quota classes), with their defaults.
public enum QuotaResource: String, Sendable, Codable, CaseIterable {
    case instances, cores, ramMB = "ram_mb", keyPairs = "key_pairs", serverGroups = "server_groups"
    case serverGroupMembers = "server_group_members", floatingIPs = "floating_ips"
    case volumes, gigabytes, snapshots

    /// Nova's and Cinder's defaults.
    public var defaultLimit: Int {
        switch self {
        case .instances: 10
        case .cores: 20
        case .ramMB: 51200
        case .keyPairs: 100
        case .serverGroups, .serverGroupMembers, .floatingIPs, .volumes, .snapshots: 10
        case .gigabytes: 1000
        }
    }

    /// Nova's quota refusal: `Quota exceeded for instances: requested 1, used 5 of 5`.
    public func exceeded(requested: Int, used: Int, limit: Int) -> CloudError {
        CloudError(.quota, "Quota exceeded for \(rawValue): requested \(requested), used \(used) of \(limit)")
    }
}

/// A registered user (`/users/NAME`): a local account by uid, and the project new objects
/// go into.
public struct UserInfo: Sendable, Equatable {
    public var name: String
    public var uid: UInt32
    /// The project the user's new objects go into ("" until one is chosen: the first the
    /// user belongs to is used).
    public var project: String
    /// The user's roles, by project.
    public var roles: [String: Role]
    public init(name: String, uid: UInt32, project: String, roles: [String: Role]) {
        self.name = name; self.uid = uid; self.project = project; self.roles = roles
    }
}

/// A Keystone project (`/projects/NAME`): its members' roles, quota and live usage.
public struct ProjectInfo: Sendable, Equatable {
    public var name: String
    /// The group id `ls -l` shows for the project's objects.
    public var gid: UInt32
    /// Role by user name.
    public var members: [String: Role]
    /// Limits; -1 is unlimited.
    public var quota: [QuotaResource: Int]
    /// What the project holds now, counted live.
    public var usage: [QuotaResource: Int]
    public var created: Double
    public init(name: String, gid: UInt32, members: [String: Role], quota: [QuotaResource: Int],
                usage: [QuotaResource: Int], created: Double) {
        self.name = name; self.gid = gid; self.members = members; self.quota = quota; self.usage = usage; self.created = created
    }

    /// `USER ROLE` lines, sorted by user.
    public var memberLines: [String] { members.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.rawValue)" } }

    /// Parses `members`: one `USER ROLE` per line (blank lines ignored); `EINVAL` naming
    /// the first bad line.
    public static func parseMembers(_ text: String) throws(CloudError) -> [String: Role] {
        var out: [String: Role] = [:]
        for raw in text.split(whereSeparator: \.isNewline) {
            let words = raw.split(whereSeparator: \.isWhitespace)
            if words.isEmpty { continue }
            guard words.count == 2, let role = Role(rawValue: String(words[1])) else {
                throw CloudError.invalid("members: '\(raw)' is not USER ROLE (roles: reader, member, manager, admin)")
            }
            out[String(words[0])] = role
        }
        return out
    }
}
