/// A write to a host's `ctl` (Nova's os-services enable/disable and os-evacuate).
public enum HostAction: String, Sendable, CaseIterable {
    /// The scheduler may place instances on the host again.
    case enable
    /// The scheduler skips the host (its instances keep running).
    case disable
    /// Rebuild a down host's instances elsewhere.
    case evacuate

    /// Parses one write to a host's `ctl`; `EINVAL` for anything else.
    public init(parsing text: String) throws(CloudError) {
        guard let a = HostAction(rawValue: text) else {
            throw CloudError.invalid("unknown host action '\(text.prefix(40))'; use enable, disable or evacuate")
        }
        self = a
    }
}

/// A write to a host's writable files.
public enum HostChange: Sendable, Equatable {
    /// `uri`: registers the host (connects it, reads its capacity).
    case uri(String)
    /// `availability_zone`: Nova's availability zone of the host.
    case availabilityZone(String)
    /// `agent`: the address of the host's `cloudfs agent` (empty: none).
    case agent(String)

    public var field: String {
        switch self {
        case .uri: "uri"
        case .availabilityZone: "availability_zone"
        case .agent: "agent"
        }
    }
}

/// A write to one of a flavor's files (Nova's flavor fields), as a number.
public enum FlavorChange: Sendable, Equatable {
    case vcpus(Int), ramMB(Int), diskGB(Int)

    /// The file written.
    public var field: String {
        switch self {
        case .vcpus: "vcpus"
        case .ramMB: "ram_mb"
        case .diskGB: "disk_gb"
        }
    }

    /// Parses the text written to flavor file `field`: a whole number; `EINVAL` otherwise.
    public init(field: String, parsing text: String) throws(CloudError) {
        guard let n = Int(text) else { throw CloudError.invalid("\(field) must be a whole number, got '\(text.prefix(40))'") }
        switch field {
        case "vcpus": self = .vcpus(n)
        case "ram_mb": self = .ramMB(n)
        case "disk_gb": self = .diskGB(n)
        default: throw CloudError.invalid("flavors have no field '\(field)'")
        }
    }
}
