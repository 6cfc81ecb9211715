import CloudCore
import Foundation

/// FakeCloud's nova-network: networks with text fields (only `mode` is checked), floating
/// IPs allocated by mkdir and associated by writes, security groups holding their text.
struct FakeNetworkState {
    var networks: [String: [String: String]] = ["default": FakeNetworkState.defaults]
    var floating: [String: FloatingIPInfo] = [:]
    var groups: [String: SecurityGroupInfo] = ["default": SecurityGroupInfo(name: "default", rules: "", ownerUID: 0)]

    static let defaults = ["mode": "flatdhcp\n", "cidr": "10.0.0.0/16\n", "gateway": "10.0.0.1\n", "dns": "",
                           "bridge": "br100\n", "bridge_interface": "", "vlan": "", "dhcp_start": "10.0.0.2\n",
                           "floating_range": "", "project": ""]
}

extension FakeCloud {
    public func networks() -> [NetworkInfo] {
        let names = net.withLock { $0.networks.keys.sorted() }
        return names.compactMap(network)
    }

    public func network(_ name: String) -> NetworkInfo? {
        guard let fields = net.withLock({ $0.networks[name] }) else { return nil }
        let leases = instances().filter { !$0.ips.isEmpty }.map { "\($0.ips[0]) \($0.macs.first ?? "") \($0.name)" }
        return NetworkInfo(name: name, fields: fields, leases: name == "default" ? leases : [],
                           free: name == "default" ? 65533 - leases.count : 253)
    }

    public func createNetwork(_ name: String, caller: Caller) throws(CloudError) {
        try checkName(name, "network", caller)
        let taken = net.withLock { s in
            if s.networks[name] != nil { return true }
            var f = FakeNetworkState.defaults
            f["cidr"] = "10.\(s.networks.count).0.0/24\n"
            s.networks[name] = f
            return false
        }
        if taken { throw refuse(.exists, "network '\(name)' already exists", name, caller) }
        notify(.network, name)
    }

    public func deleteNetwork(_ name: String, caller: Caller) throws(CloudError) {
        guard net.withLock({ $0.networks.removeValue(forKey: name) }) != nil else {
            throw refuse(.noEntry, "no network named '\(name)'", name, caller)
        }
        notify(.network, name)
    }

    public func setNetworkField(_ name: String, field: String, value: String, caller: Caller) throws(CloudError) {
        if field == "mode", !["flat", "flatdhcp", "vlan"].contains(value) {
            throw refuse(.invalid, "mode: '\(value)' is not one of flat, flatdhcp, vlan", "\(name)/mode", caller)
        }
        let ok = net.withLock { s in
            guard s.networks[name]?[field] != nil else { return false }
            s.networks[name]![field] = value.isEmpty ? "" : value + "\n"
            return true
        }
        if !ok { throw refuse(.noEntry, "no field \(field) of network \(name)", "\(name)/\(field)", caller) }
        notify(.network, name)
    }

    public func floatingIPs() -> [FloatingIPInfo] { net.withLock { $0.floating.values.sorted { $0.address < $1.address } } }
    public func floatingIP(_ address: String) -> FloatingIPInfo? { net.withLock { $0.floating[address] } }

    public func createFloatingIP(_ address: String, caller: Caller) throws(CloudError) {
        let taken = net.withLock { s in
            if s.floating[address] != nil { return true }
            s.floating[address] = FloatingIPInfo(address: address, pool: "default", instance: "", project: "default", ownerUID: caller.uid)
            return false
        }
        if taken { throw refuse(.exists, "floating IP \(address) is already allocated", address, caller) }
        notify(.floatingIP, address)
    }

    public func deleteFloatingIP(_ address: String, caller: Caller) throws(CloudError) {
        guard net.withLock({ $0.floating.removeValue(forKey: address) }) != nil else {
            throw refuse(.noEntry, "floating IP \(address) is not allocated", address, caller)
        }
        notify(.floatingIP, address)
    }

    public func associateFloatingIP(_ address: String, instance: String, caller: Caller) throws(CloudError) {
        if !instance.isEmpty, self.instance(instance) == nil { throw refuse(.noEntry, "no instance named '\(instance)'", address, caller) }
        let ok = net.withLock { s in
            guard s.floating[address] != nil else { return false }
            s.floating[address]!.instance = instance
            return true
        }
        if !ok { throw refuse(.noEntry, "floating IP \(address) is not allocated", address, caller) }
        notify(.floatingIP, address)
        if !instance.isEmpty { notify(.instance, instance) }
    }

    public func setInstanceFloatingIP(_ name: String, value: String, caller: Caller) throws(CloudError) {
        guard instance(name) != nil else { throw refuse(.noEntry, "no instance named '\(name)'", name, caller) }
        let current = floatingIPs().first { $0.instance == name }?.address
        if value.isEmpty {
            if let current { try associateFloatingIP(current, instance: "", caller: caller) }
            return
        }
        if value == "auto" {
            if current != nil { return }
            let n = net.withLock { $0.floating.count } + 1
            try createFloatingIP("172.24.4.\(n)", caller: caller)
            return try associateFloatingIP("172.24.4.\(n)", instance: name, caller: caller)
        }
        if floatingIP(value) == nil { try createFloatingIP(value, caller: caller) }
        try associateFloatingIP(value, instance: name, caller: caller)
    }

    public func securityGroups() -> [SecurityGroupInfo] { net.withLock { $0.groups.values.sorted { $0.name < $1.name } } }
    public func securityGroup(_ name: String) -> SecurityGroupInfo? { net.withLock { $0.groups[name] } }

    public func createSecurityGroup(_ name: String, caller: Caller) throws(CloudError) {
        try checkName(name, "security group", caller)
        let taken = net.withLock { s in
            if s.groups[name] != nil { return true }
            s.groups[name] = SecurityGroupInfo(name: name, rules: "", ownerUID: caller.uid)
            return false
        }
        if taken { throw refuse(.exists, "security group '\(name)' already exists", name, caller) }
        notify(.securityGroup, name)
    }

    public func deleteSecurityGroup(_ name: String, caller: Caller) throws(CloudError) {
        if name == "default" { throw refuse(.busy, "the default security group cannot be removed", name, caller) }
        guard net.withLock({ $0.groups.removeValue(forKey: name) }) != nil else {
            throw refuse(.noEntry, "no security group named '\(name)'", name, caller)
        }
        notify(.securityGroup, name)
    }

    public func setSecurityGroupRules(_ name: String, rules: String, caller: Caller) throws(CloudError) {
        let ok = net.withLock { s in
            guard s.groups[name] != nil else { return false }
            s.groups[name]!.rules = rules.isEmpty || rules.hasSuffix("\n") ? rules : rules + "\n"
            return true
        }
        if !ok { throw refuse(.noEntry, "no security group named '\(name)'", name, caller) }
        notify(.securityGroup, name)
    }
}
