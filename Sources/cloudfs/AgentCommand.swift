import ArgumentParser
import CloudCore
import CloudNetwork
import Foundation
import HostAgent

/// `cloudfs agent`: the per-host agent (Neutron's linuxbridge agent in spirit) on a
/// compute host. It serves the HostAgent gRPC service over mutual TLS and applies what the
/// controller sends: this host's VXLAN segments (bridge, vxlan device, forwarding
/// entries, the DHCP server's local port) and its guests' security groups. It runs until
/// killed; its state directory remembers which segments it made, so a plan that drops one
/// removes it even after a restart.
struct AgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the per-host agent of a compute host (gRPC over mutual TLS).")

    @Option(help: "The host's name in /hosts (its certificate was issued for it).")
    var name: String

    @Option(help: "A.B.C.D:PORT to listen on.")
    var listen: String

    @Option(help: "This host's VXLAN tunnel address (Neutron's local_ip); defaults to the listen address.")
    var tunnelIP: String?

    @Option(help: "Directory with ca.pem, agent.pem, agent-key.pem (cloudfs agent-credentials).")
    var pki: String

    @Option(help: "The agent's state directory.")
    var state: String

    func run() throws {
        let stateDir = absolutePath(state)
        try reportingFailures {
            try ObjectName.validate(name, kind: "host")
            let (ip, _) = try AgentAddress.split(listen)
            try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
            let lock = try StateLock.acquire(stateDir, role: "agent \(name)")
            let handler = AgentHandler(name: name, tunnelIP: tunnelIP ?? ip, stateDir: stateDir)
            let (listen, pkiDir) = (self.listen, absolutePath(pki))
            Task {
                do {
                    try await AgentServer.serve(address: listen, pkiDirectory: pkiDir, handler: handler) { bound in
                        FileHandle.standardOutput.write(Data("cloudfs agent \(handler.name) listening on \(bound)\n".utf8))
                    }
                } catch {
                    FileHandle.standardError.write(Data("cloudfs: the agent cannot serve on \(listen): \(error)\n".utf8))
                    Foundation.exit(1)
                }
            }
            withExtendedLifetime(lock) { dispatchMain() }
        }
    }
}

/// `cloudfs agent-credentials --state STATE --host NAME --out DIR [--address IP]...`: issues
/// host NAME's agent certificate from the cloud's CA (made in STATE/pki on first use) and
/// writes ca.pem, agent.pem, agent-key.pem into DIR, to be copied to that host; and its
/// libvirt TLS certificates (`LibvirtPKI`, for `qemu+tls://` hosts and migration between
/// them) into DIR/libvirt-pki, laid out as the host's /etc/pki.
struct AgentCredentialsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent-credentials",
        abstract: "Issue a compute host's agent certificate from the cloud's CA.")

    @Option(help: "The controller's state directory (its pki/ holds the CA).")
    var state: String

    @Option(help: "The host's name in /hosts.")
    var host: String

    @Option(help: "Where to write ca.pem, agent.pem and agent-key.pem (and libvirt-pki/).")
    var out: String

    @Option(name: .customLong("address"),
            help: "An address the host's libvirt URI uses (qemu+tls://ADDRESS/system); repeatable.")
    var addresses: [String] = []

    func run() throws {
        try reportingFailures {
            let (stateDir, outDir) = (absolutePath(state), absolutePath(out))
            try AgentPKI(directory: stateDir + "/pki").issueHostCredentials(host: host, into: outDir)
            try LibvirtPKI(directory: stateDir + "/pki/libvirt").issueHostCredentials(host: host, addresses: addresses,
                                                                                     into: outDir + "/libvirt-pki")
        }
    }
}

/// What the agent does for each RPC: reports its host, applies its share of the plan.
final class AgentHandler: HostAgentHandler, @unchecked Sendable {
    // @unchecked: `lock` serialises every apply and every read of the made segments.
    let name: String
    let tunnelIP: String
    let network: HostNetworking
    /// The words that start this binary's metadata server on a local port.
    let metadataServer = [(try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0],
                          "metadata-serve"]
    /// What this host's kernel builds (read once: it does not change while the agent runs).
    let kernel = KernelFeatures.probe()
    private let madeFile: String
    private let lock = NSLock()
    /// The ports whose filter is loaded (nil: none loaded by this process yet, so the
    /// first plan always loads it).
    private var appliedPorts: [AgentPort]?
    /// The local-port MACs kept off the tunnels (nil: not loaded by this process yet).
    private var appliedIsolation: [String]?

    init(name: String, tunnelIP: String, stateDir: String) {
        self.name = name; self.tunnelIP = tunnelIP
        network = HostNetworking(stateDirectory: stateDir + "/network")
        madeFile = stateDir + "/segments.json"
    }

    func status() async throws -> AgentStatus {
        let made = lock.withLock { load() }
        return AgentStatus(host: name, version: "cloudfs-agent 1", tunnelIP: tunnelIP, vlan: kernel.vlan, vxlan: kernel.vxlan,
                           segments: made.keys.sorted())
    }

    func apply(_ plan: AgentPlan) async throws -> AgentApplied {
        try lock.withLock { () throws -> AgentApplied in
            var made = load()
            var changes: [String] = []
            let isolated = plan.segments.filter { $0.dhcp != nil }.map { SegmentDHCP.portMAC(vni: $0.vni) }.sorted()
            if isolated != appliedIsolation {   // before any local port is on a bridge
                try network.isolateLocalPorts(macs: isolated)
                appliedIsolation = isolated
            }
            for seg in plan.segments {
                made[seg.network] = Made(bridge: seg.bridge, device: seg.device, vni: seg.vni)
                try save(made)   // before the links: a crash never leaves a segment unknown
                changes += try network.ensureSegment(seg, local: tunnelIP).map { "\(seg.network): \($0)" }
                changes += try network.ensureLocalPort(seg, metadataServer: metadataServer).map { "\(seg.network): \($0)" }
            }
            let wanted = Set(plan.segments.map(\.network))
            for (net, m) in made where !wanted.contains(net) {
                if let vni = m.vni {
                    changes += try network.removeLocalPort(network: net, vni: vni).map { "\(net): \($0) removed" }
                }
                changes += try network.removeSegment(bridge: m.bridge, device: m.device).map { "\(net): \($0) removed" }
                made[net] = nil
                try save(made)
            }
            if plan.filter { changes += try applyFilter(plan.ports) }
            return AgentApplied(changes: changes)
        }
    }

    /// The security groups of this host's guests: the cloudfs nftables tables, replaced in
    /// one transaction when the ports changed (none: the tables go).
    private func applyFilter(_ ports: [AgentPort]) throws -> [String] {
        guard ports != appliedPorts else { return [] }
        if ports.isEmpty {
            try network.removeRuleset()
        } else {
            let parsed = try ports.map { p throws(CloudError) -> InstancePort in
                guard let addr = IPv4Address(p.address) else { throw CloudError.invalid("port \(p.interface): '\(p.address)' is not an IPv4 address") }
                return InstancePort(interface: p.interface, address: addr, dhcpServer: p.dhcpServer.flatMap(IPv4Address.init),
                                    rules: try SecurityGroupRule.parseRules(p.rules.joined(separator: "\n")))
            }
            try network.applyRuleset(associations: [], ports: parsed)
        }
        appliedPorts = ports
        return ["filter: \(ports.count) port(s)"]
    }

    /// A segment this agent made (`vni` names its local port; nil in files from before
    /// local ports).
    private struct Made: Codable { var bridge: String; var device: String; var vni: Int? }

    private func load() -> [String: Made] {
        guard let d = FileManager.default.contents(atPath: madeFile) else { return [:] }
        return (try? JSONDecoder().decode([String: Made].self, from: d)) ?? [:]
    }

    private func save(_ made: [String: Made]) throws {
        let tmp = madeFile + ".tmp"
        try JSONEncoder().encode(made).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, madeFile) == 0 else { throw CloudError.io("cannot save \(madeFile): errno \(errno)") }
    }
}
