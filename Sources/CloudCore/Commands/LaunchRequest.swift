import Foundation

/// What one instance is launched with (Nova's server create request body, the part a
/// cloudfs user sets): every field left out takes the value of `/defaults` at the moment
/// the instance is made. A launch file (`cp web1.json /instances/web1`) carries one as
/// JSON; plain `mkdir` is the empty request.
public struct LaunchRequest: Sendable, Equatable {
    public var image: String?
    public var flavor: String?
    public var keyName: String?
    /// cloud-init user data, as text (Nova's user_data, decoded).
    public var userData: String?
    /// Nova's server metadata: key → value.
    public var metadata: [String: String] = [:]
    public var network: String?
    /// The server group (Nova's `group` scheduler hint).
    public var group: String?
    public var securityGroups: [String]?
    public var availabilityZone: String?
    /// Nova's `config_drive`: false leaves the guest to the metadata service.
    public var configDrive = true

    public init(image: String? = nil, flavor: String? = nil, keyName: String? = nil, userData: String? = nil,
                metadata: [String: String] = [:], network: String? = nil, group: String? = nil,
                securityGroups: [String]? = nil, availabilityZone: String? = nil) {
        self.image = image; self.flavor = flavor; self.keyName = keyName; self.userData = userData
        self.metadata = metadata; self.network = network; self.group = group
        self.securityGroups = securityGroups; self.availabilityZone = availabilityZone
    }

    /// Nova's limits: user data at most 64 KiB, at most 128 metadata items, keys of 1 to
    /// 255 characters, values of at most 255.
    public static let maxUserData = 65535
    public static let maxMetadataItems = 128
    public static let maxMetadataLength = 255

    /// The keys a launch file may hold.
    public static let keys: Set<String> = [
        "image", "flavor", "key_name", "user_data", "metadata", "network", "networks", "group",
        "security_groups", "availability_zone", "config_drive",
    ]

    /// Parses a launch file: one JSON object with the keys above, optionally wrapped as
    /// Nova's `{"server": {...}}` (whose `imageRef`, `flavorRef` and `name` are accepted
    /// too; `name` must then be the file's). `EINVAL` naming the first problem.
    public static func parse(json bytes: [UInt8], name: String) throws(CloudError) -> LaunchRequest {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(bytes)) } catch {
            throw .invalid("the launch file is not JSON: \(Self.jsonProblem(error))")
        }
        guard var body = object as? [String: Any] else { throw .invalid("the launch file must hold one JSON object") }
        if body.count == 1, let server = body["server"] as? [String: Any] { body = server }
        if let n = body.removeValue(forKey: "name") {
            guard let s = n as? String, s == name else { throw .invalid("name: the launch file names \(n), not \(name)") }
        }
        if let v = body.removeValue(forKey: "imageRef") { body["image"] = v }
        if let v = body.removeValue(forKey: "flavorRef") { body["flavor"] = v }
        if let unknown = body.keys.filter({ !keys.contains($0) }).sorted().first {
            throw .invalid("unknown key '\(unknown.prefix(64))' (a launch file takes \(keys.sorted().joined(separator: ", ")))")
        }
        var r = LaunchRequest()
        r.image = try string(body, "image")
        r.flavor = try string(body, "flavor")
        r.keyName = try string(body, "key_name")
        r.userData = try string(body, "user_data", allowEmpty: true)
        r.group = try string(body, "group")
        r.availabilityZone = try string(body, "availability_zone")
        r.network = try string(body, "network")
        if let nets = body["networks"] {
            // Nova's form: [{"uuid": ...}] or [{"name": ...}]; one network per instance here.
            guard let list = nets as? [Any], list.count == 1 else {
                throw .invalid("networks: give exactly one network (an instance has one NIC here)")
            }
            let item = list[0]
            let named = (item as? String) ?? (item as? [String: Any]).flatMap { ($0["name"] ?? $0["uuid"]) as? String }
            guard let named, !named.isEmpty else { throw .invalid("networks: each entry is a name or {\"name\": NAME}") }
            if let n = r.network, n != named { throw .invalid("network and networks name different networks") }
            r.network = named
        }
        if let groups = body["security_groups"] {
            guard let list = groups as? [Any] else { throw .invalid("security_groups: a list of names") }
            r.securityGroups = try list.map { (item: Any) throws(CloudError) -> String in
                let named = (item as? String) ?? (item as? [String: Any])?["name"] as? String
                guard let named, !named.isEmpty else { throw .invalid("security_groups: each entry is a name or {\"name\": NAME}") }
                return named
            }
        }
        if let cd = body["config_drive"] {
            guard let b = cd as? Bool else { throw .invalid("config_drive: true or false") }
            r.configDrive = b
        }
        if let meta = body["metadata"] {
            guard let dict = meta as? [String: Any] else { throw .invalid("metadata: a JSON object of string values") }
            for (k, v) in dict {
                guard let s = v as? String else { throw .invalid("metadata: the value of '\(k.prefix(64))' is not a string") }
                r.metadata[k] = s
            }
        }
        try r.validate()
        return r
    }

    /// Nova's limits on user data and metadata (`EINVAL` with the limit).
    public func validate() throws(CloudError) {
        if let u = userData, u.utf8.count > Self.maxUserData {
            throw .invalid("user_data is \(u.utf8.count) bytes; Nova's limit is \(Self.maxUserData)")
        }
        try Self.validateMetadata(metadata)
    }

    public static func validateMetadata(_ metadata: [String: String]) throws(CloudError) {
        if metadata.count > maxMetadataItems {
            throw CloudError(.quota, "Quota exceeded for metadata_items: \(metadata.count) items, the limit is \(maxMetadataItems)")
        }
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) {
            try validateMetadataKey(k)
            if v.count > maxMetadataLength {
                throw .invalid("metadata value of '\(k)' is \(v.count) characters; the limit is \(maxMetadataLength)")
            }
        }
    }

    public static func validateMetadataKey(_ k: String) throws(CloudError) {
        if k.isEmpty || k.count > maxMetadataLength {
            throw .invalid("metadata key '\(k.prefix(64))' must be 1 to \(maxMetadataLength) characters")
        }
        if k.contains("/") || k.hasPrefix(".") || k.unicodeScalars.contains(where: { $0.value < 0x20 }) {
            throw .invalid("metadata key '\(k.prefix(64))' may not contain '/' or control characters, nor start with '.'")
        }
    }

    private static func string(_ body: [String: Any], _ key: String, allowEmpty: Bool = false) throws(CloudError) -> String? {
        guard let v = body[key], !(v is NSNull) else { return nil }
        guard let s = v as? String else { throw .invalid("\(key): expected a string") }
        if s.isEmpty && !allowEmpty { throw .invalid("\(key): empty") }
        return s
    }

    private static func jsonProblem(_ error: Error) -> String {
        let ns = error as NSError
        return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
    }
}
