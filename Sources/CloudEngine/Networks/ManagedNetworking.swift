import CloudCore
import CloudNetwork
import Foundation

/// nova-network's `linux_net` driver as the engine drives it (`cloudfs mount
/// --manage-network`): per network, the bridge (and VLAN interface), dnsmasq with the
/// network's fixed MAC → IP bindings, and a route for its floating range; for the whole
/// host, `ip_forward` and the nftables ruleset (floating IP DNAT/SNAT, security groups).
/// Calls are serialised by one lock: host commands never interleave.
final class ManagedNetworking: Sendable {
    let host: HostNetworking
    private let lock = NSLock()

    init(stateDir: String) {
        host = HostNetworking(stateDirectory: stateDir + "/network")
    }

    /// Runs `body` alone.
    func serialized<T>(_ body: () throws(CloudError) -> T) throws(CloudError) -> T {
        lock.lock(); defer { lock.unlock() }
        return try body()
    }

    /// The network's links, DHCP server and floating route, as nova-network's
    /// `plug` + `update_dhcp`: flat joins an existing bridge (`EIO` when it is missing);
    /// flatdhcp creates the bridge and runs dnsmasq; vlan adds `vlan<N>` on
    /// `bridge_interface` to its own bridge, then runs dnsmasq; vxlan adds `vxlan<VNI>` to a
    /// bridge without address (addresses are injected, no dnsmasq).
    func apply(_ spec: NetworkSpec, hosts: [DHCPHost]) throws(CloudError) {
        try serialized { () throws(CloudError) in
            switch spec.mode {
            case .flat:
                guard host.linkExists(spec.bridge) else {
                    throw CloudError.io("bridge \(spec.bridge) does not exist: flat network \(spec.name) joins an existing bridge")
                }
            case .flatdhcp, .vlan:
                try host.ensureBridge(spec)
                try host.syncDHCP(spec, hosts: hosts)
            case .vxlan:
                // This host's share only: its guests reach each other on the bridge; the
                // forwarding entries to other hosts are their agents' plan.
                guard let vni = spec.vni, let device = spec.vxlanInterface else { return }
                try host.ensureSegment(VXLANSegment(network: spec.name, vni: vni, bridge: spec.bridge, device: device,
                                                    peers: [], macs: [:]), local: nil)
            }
            try host.ensureFloatingRoute(spec)
        }
    }

    /// Only the DHCP hosts file (after an allocation or a release); nothing for flat networks.
    func syncHosts(_ spec: NetworkSpec, hosts: [DHCPHost]) throws(CloudError) {
        guard spec.mode.usesDHCP else { return }
        try serialized { () throws(CloudError) in _ = try host.syncDHCP(spec, hosts: hosts) }
    }

    /// Replaces the nftables ruleset; turns on forwarding first (DNAT of traffic from
    /// other hosts to a floating IP is forwarded).
    func applyRuleset(associations: [FloatingIPAssociation], ports: [InstancePort],
                      networks: [NetworkNAT], metadataPort: Int?) throws(CloudError) {
        try serialized { () throws(CloudError) in
            try host.runner.check(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
            try host.applyRuleset(associations: associations, ports: ports, networks: networks, metadataPort: metadataPort)
        }
    }

    /// Stops the network's dnsmasq and removes the links cloudfs made for it (`rmdir`).
    func remove(_ spec: NetworkSpec) throws(CloudError) {
        try serialized { () throws(CloudError) in
            try host.stopDHCP(spec)
            try host.removeFloatingRoute(spec)
            try host.removeLinks(spec)
        }
    }

    /// The tap device name of an instance's NIC (`<target dev=...>`): `tap` and the first
    /// 11 hex digits of its uuid, 14 characters (Linux allows 15).
    static func tapName(instanceID: String) -> String {
        "tap" + String(instanceID.lowercased().filter(\.isHexDigit).prefix(11))
    }
}
