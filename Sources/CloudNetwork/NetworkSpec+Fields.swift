import CloudCore

extension NetworkSpec {
    /// Sets `field` from the bytes a user wrote to its file. An empty write clears an
    /// optional field (dns, vlan, bridge_interface, floating_range, project) and gives gateway,
    /// dhcp_start and bridge back their defaults. Defaults follow the fields they come from:
    /// a gateway still at its default moves with a new cidr, and so on. Throws `EINVAL` with
    /// the reason for a malformed value; cross-field checks are `validate(against:)`'s.
    public mutating func set(_ field: NetworkField, from bytes: some Collection<UInt8>) throws(CloudError) {
        let f = field.rawValue
        switch field {
        case .dns:
            dns = try Self.parseDNS(FieldText.decode(bytes, field: f))
        default:
            try set(field, text: FieldText.singleValue(bytes, field: f))
        }
    }

    /// Sets `field` from already decoded, trimmed text (see `set(_:from:)`).
    public mutating func set(_ field: NetworkField, text: String) throws(CloudError) {
        let f = field.rawValue
        switch field {
        case .mode:
            let oldBridge = Self.defaultBridge(mode: mode, vlan: vlan, vni: vni)
            mode = try Self.parseMode(text)
            if bridge == oldBridge { bridge = Self.defaultBridge(mode: mode, vlan: vlan, vni: vni) }
        case .cidr:
            let new = try Self.parse(f, text) { (t) throws(CloudError) in try IPv4Network(cidr: t) }
            if gateway == cidr.defaultGateway {
                if dhcpStart.value == gateway.value &+ 1 { dhcpStart = IPv4Address(new.defaultGateway.value &+ 1) }
                gateway = new.defaultGateway
            }
            cidr = new
        case .gateway:
            let new = text.isEmpty ? cidr.defaultGateway : try Self.parse(f, text) { (t) throws(CloudError) in try IPv4Address(parsing: t) }
            if dhcpStart.value == gateway.value &+ 1 { dhcpStart = IPv4Address(new.value &+ 1) }
            gateway = new
        case .dhcpStart:
            dhcpStart = text.isEmpty ? IPv4Address(gateway.value &+ 1)
                : try Self.parse(f, text) { (t) throws(CloudError) in try IPv4Address(parsing: t) }
        case .dns:
            dns = try Self.parseDNS(text)
        case .bridge:
            if text.isEmpty { bridge = Self.defaultBridge(mode: mode, vlan: vlan, vni: vni); return }
            try InterfaceName.validate(text, field: f)
            bridge = text
        case .bridgeInterface:
            if text.isEmpty { bridgeInterface = nil; return }
            try InterfaceName.validate(text, field: f)
            bridgeInterface = text
        case .vlan:
            let oldBridge = Self.defaultBridge(mode: mode, vlan: vlan, vni: vni)
            vlan = text.isEmpty ? nil : try Self.parseVLAN(text)
            if bridge == oldBridge { bridge = Self.defaultBridge(mode: mode, vlan: vlan, vni: vni) }
        case .vni:
            let oldBridge = Self.defaultBridge(mode: mode, vlan: vlan, vni: vni)
            vni = text.isEmpty ? nil : try Self.parseVNI(text)
            if bridge == oldBridge { bridge = Self.defaultBridge(mode: mode, vlan: vlan, vni: vni) }
        case .floatingRange:
            floatingRange = text.isEmpty ? nil : try Self.parse(f, text) { (t) throws(CloudError) in try IPv4Network(cidr: t) }
        case .project:
            if text.isEmpty { project = nil; return }
            try ObjectName.validate(text, kind: "project")
            project = text
        }
    }

    /// The content of `field`'s file: the value and a newline, or empty for an unset field.
    public func text(of field: NetworkField) -> String {
        let value: String? = switch field {
        case .mode: mode.rawValue
        case .cidr: cidr.description
        case .gateway: gateway.description
        case .dns: dns.isEmpty ? nil : dns.map(\.description).joined(separator: "\n")
        case .bridge: bridge
        case .bridgeInterface: bridgeInterface
        case .vlan: vlan.map(String.init)
        case .vni: vni.map(String.init)
        case .dhcpStart: dhcpStart.description
        case .floatingRange: floatingRange?.description
        case .project: project
        }
        return value.map { $0 + "\n" } ?? ""
    }

    /// `flat`, `flatdhcp`, `vlan` or `vxlan`; throws `EINVAL` otherwise.
    public static func parseMode(_ text: String) throws(CloudError) -> NetworkMode {
        guard let m = NetworkMode(rawValue: text) else {
            throw CloudError.invalid("mode: '\(text.prefix(40))' is not one of flat, flatdhcp, vlan, vxlan")
        }
        return m
    }

    /// A VXLAN network identifier, 1-16777215 (24 bits, 0 unused); throws `EINVAL` otherwise.
    public static func parseVNI(_ text: String) throws(CloudError) -> Int {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }), text.count <= 8, let v = Int(text),
              vniRange.contains(v) else {
            throw CloudError.invalid("vni: '\(text.prefix(40))' is not a VXLAN network identifier from 1 to 16777215")
        }
        return v
    }

    /// A VLAN id, 1-4094; throws `EINVAL` otherwise.
    public static func parseVLAN(_ text: String) throws(CloudError) -> Int {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }), text.count <= 4, let v = Int(text),
              vlanRange.contains(v) else {
            throw CloudError.invalid("vlan: '\(text.prefix(40))' is not a VLAN id from 1 to 4094")
        }
        return v
    }

    /// DNS servers separated by newlines, commas or spaces; empty text is no server.
    public static func parseDNS(_ text: String) throws(CloudError) -> [IPv4Address] {
        var out: [IPv4Address] = []
        for word in text.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" || $0.isNewline }) {
            let a = try parse("dns", String(word)) { (t) throws(CloudError) in try IPv4Address(parsing: t) }
            if !out.contains(a) { out.append(a) }
        }
        return out
    }

    /// Runs `parser`, prefixing its refusal with the field name.
    private static func parse<T>(_ field: String, _ text: String, _ parser: (String) throws(CloudError) -> T) throws(CloudError) -> T {
        do throws(CloudError) { return try parser(text) } catch { throw CloudError.invalid("\(field): \(error.reason)") }
    }
}
