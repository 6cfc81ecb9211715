import CloudCore
import CloudNetwork
import CloudStore
import Foundation

/// The end of a host's managed networking (`cloudfs unmount --teardown-network`), which
/// nova-network never offered: with no instance left, removes every network's floating
/// route, dnsmasq, VLAN interface and bridge, and the cloudfs nftables tables, the way
/// `--manage-network` made them. Guests keep the networking while any instance exists, so
/// it refuses then, naming them.
///
/// Runs with no engine: the caller holds the state directory's lock (no daemon is
/// running), so the database and the host state are the caller's alone.
public enum HostNetworkTeardown {
    /// What was removed, for the command to print.
    public struct Report: Sendable {
        /// Networks whose dnsmasq was stopped, with its pid.
        public var stoppedDHCP: [String: Int32] = [:]
        /// Bridges and VLAN interfaces deleted.
        public var removedLinks: [String] = []
        /// Networks the database holds.
        public var networks: [String] = []
    }

    /// `EINVAL` when this process runs in another network namespace than the one the
    /// networking was made in (checked again by `run`; callers ask first so that nothing
    /// is unmounted for a teardown that cannot happen here).
    public static func checkNamespace(stateDir: String) throws(CloudError) {
        try HostNetworking(stateDirectory: stateDir + "/network").checkNamespace()
    }

    /// Tears down the host networking of the cloud in `stateDir`; `EBUSY` naming the
    /// instances that still exist. Leaves a `network.teardown` line in the cloud's events.
    public static func run(stateDir: String) throws(CloudError) -> Report {
        let config = EngineConfiguration(stateDir: stateDir)
        let host = HostNetworking(stateDirectory: stateDir + "/network")
        var report = Report()
        try host.checkNamespace()
        var specs: [NetworkSpec] = []
        var store: Store?
        if FileManager.default.fileExists(atPath: config.databasePath) {
            let s = try Store(path: config.databasePath, busyTimeout: config.databaseBusyTimeout)
            let left = try s.instances().map(\.name).sorted()
            guard left.isEmpty else {
                throw CloudError.busy("host networking is still used by instance\(left.count == 1 ? "" : "s") \(left.joined(separator: ", ")); delete \(left.count == 1 ? "it" : "them") first, or unmount without --teardown-network")
            }
            for record in try s.networks() {
                do throws(CloudError) { specs.append(try NetworkSpec(record: record)) } catch {
                    // A row that no longer parses names no bridge; its dnsmasq is still
                    // found below through its directory.
                    continue
                }
            }
            store = s
        }
        let done = try host.teardown(networks: specs)
        report.stoppedDHCP = done.stoppedDHCP
        report.removedLinks = done.removedLinks
        report.networks = specs.map(\.name)
        let log = EventLog()
        log.append(kind: "network.teardown", object: "-", [
            "networks": report.networks.joined(separator: ","),
            "links": report.removedLinks.joined(separator: ","),
            "dnsmasq": report.stoppedDHCP.keys.sorted().joined(separator: ","),
        ])
        try store?.appendEvents(log.lines)
        return report
    }
}
