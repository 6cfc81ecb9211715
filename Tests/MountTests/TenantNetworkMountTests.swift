import CloudTesting
import Foundation
import XCTest

/// Tenant networks across machines: a managed cloud whose daemon runs in its own network
/// namespace, joined to the underlay of two remote compute hosts (compute-host.sh), each
/// running libvirtd and `cloudfs agent` (gRPC over mutual TLS, certificates from the
/// cloud's CA). Two projects each get a vxlan network; the agents build the segments.
/// A guest of project one on host A is pinged by a guest of the same project on host B
/// (over VXLAN, once its security group lets ICMP in: A's agent filters its port) but not
/// by another project's guest beside it on A, which even holds an address in the same
/// subnet; each guest takes its address and metadata from its host's local DHCP port.
/// A's guest is live-migrated to B while it counts and the pings keep answering; a stopped
/// agent takes its host down with the reason; a cold migration moves B's guest back to A;
/// this machine joins with an agent of its own and a guest built here reaches A's.
final class TenantNetworkMountTests: NamespaceMountTestCase {
    override var hostArgs: [String] { [] }
    var nodes: [String: String] = [:]
    var user = ""

    override func setUpWithError() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/libvirtd"),
              FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { throw XCTSkip("needs libvirtd and setpriv") }
        try prepareTinyGuest()
        user = "cfsvx\(getpid() % 100_000)"
        let r = sh("useradd --no-create-home --shell /usr/sbin/nologin \(user)")
        guard r.status == 0 else { throw XCTSkip("cannot add a local account: \(r.err)") }
        try super.setUpWithError()
        sh("chmod 755 '\(work)'")
    }

    /// Before the daemon starts: each host's agent credentials from the cloud's CA, the
    /// hosts (agents included), and the controller's namespace on their underlay.
    override func mount(extra: [String] = [], env: String = "") throws {
        if nodes.isEmpty {
            for (name, index) in [("cfsna", 25), ("cfsnb", 26)] {
                let creds = "\(work)/pki-\(name)"
                let r = sh("'\(cloudfs)' agent-credentials --state '\(state)' --host \(name) --out '\(creds)'")
                guard r.status == 0 else { throw NSError(domain: "agent-credentials", code: 1, userInfo: [NSLocalizedDescriptionKey: r.err]) }
                nodes[name] = try startComputeHost(name, index: index, agentPKI: creds)
            }
            let a = sh("'\(computeHostScript)' attach \(namespace) 24")
            guard a.status == 0 else { throw NSError(domain: "attach", code: 1, userInfo: [NSLocalizedDescriptionKey: a.err]) }
            // This machine is a compute host too: an agent of its own in the controller's
            // namespace (as an all-in-one Neutron runs its L2 agent on the controller).
            let creds = "\(work)/pki-local"
            let r = sh("'\(cloudfs)' agent-credentials --state '\(state)' --host local --out '\(creds)'")
            guard r.status == 0 else { throw NSError(domain: "agent-credentials", code: 1, userInfo: [NSLocalizedDescriptionKey: r.err]) }
            // In the background, holding none of this shell's descriptors (the pipes sh reads).
            sh("( for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; ((fd > 2)) && { eval \"exec $fd>&-\"; } 2>/dev/null; done; "
               + "exec nsenter --net=/run/netns/\(namespace) setsid '\(cloudfs)' agent --name local --listen 10.250.0.24:7355 "
               + "--pki '\(creds)' --state '\(work)/agent-local' ) </dev/null >>'\(work)/agent-local.log' 2>&1 &")
        }
        try super.mount(extra: extra + ["--allow-other"], env: env)
    }

    override func tearDown() {
        super.tearDown()   // instances deleted while the hosts answer, unmount, namespace gone
        // The local agent, the servers of its local ports (dnsmasq, the metadata server:
        // their command lines name the agent's directory, which super.tearDown removed),
        // and their namespaces. `[a]gent-local` matches them but not this shell's own
        // command line, which pkill would otherwise kill before it reached `ip netns del`.
        sh("pkill -f -- '\(work)/[a]gent-local'; sleep 0.5; "
           + "for n in $(ip netns list | awk '$1 ~ /^cfsdhcp-/ {print $1}'); do ip netns del $n; done")
        for name in nodes.keys { stopComputeHost(name) }
        nodes = [:]
        if !user.isEmpty { sh("userdel \(user)") }
    }

    func asUser(_ script: String) -> Shell {
        sh("cd '\(mnt)' && setpriv --reuid=\(user) --regid=\(user) --clear-groups bash -c \(shellQuote(script))", timeout: 60)
    }

    func inHost(_ node: String, _ script: String) -> String {
        sh("ip netns exec cfs-\(node) bash -c \(shellQuote(script))").out
    }

    /// The console lines of `name` that start with `prefix`, re-read until `done` holds.
    func consoleLines(_ name: String, _ prefix: String, seconds: Int = 150, until done: ([String]) -> Bool) -> [String] {
        var lines: [String] = []
        for _ in 0..<max(1, seconds * 2) {
            lines = read("instances/\(name)/console").split(whereSeparator: \.isNewline).map(String.init).filter { $0.hasPrefix(prefix) }
            if done(lines) { break }
            usleep(500_000)
        }
        return lines
    }

    func pings(_ name: String, after n: Int = 0, atLeast count: Int) -> [(Int, String)] {
        consoleLines(name, "CLOUDFS-PING ") { $0.compactMap(Self.ping).filter { $0.0 > n }.count >= count }
            .compactMap(Self.ping).filter { $0.0 > n }
    }

    /// Console lines that hold an answered ping and the metadata fetch's outcome (the two
    /// run side by side in the guest).
    static func pingedAndFetched(_ lines: [String]) -> Bool {
        lines.contains { $0.hasPrefix("CLOUDFS-PING ") && $0.hasSuffix(" ok") } && lines.contains { $0.hasPrefix("CLOUDFS-METADATA") }
    }

    static func ping(_ line: String) -> (Int, String)? {
        let f = line.split(separator: " ")
        guard f.count >= 4, let n = Int(f[1]) else { return nil }
        return (n, String(f[3]))
    }

    func ticks(_ name: String) -> (last: Int, boots: Set<String>) {
        let lines = consoleLines(name, "CLOUDFS-TICK ", seconds: 0) { _ in true }
        var last = 0, boots = Set<String>()
        for l in lines {
            let f = l.split(separator: " ")
            if f.count >= 3, let n = Int(f[1]) { last = max(last, n); boots.insert(String(f[2])) }
        }
        return (last, boots)
    }

    func active(_ name: String, _ r: Shell? = nil) {
        XCTAssertEqual(ok("timeout 150 cat instances/\(name)/wait", timeout: 160), "ACTIVE\n", read("instances/\(name)/fault"))
    }

    func testProjectsAreIsolatedAcrossHostsAndAGuestMovesWithItsSegment() throws {
        // The hosts and their agents.
        for (name, index) in [("cfsna", 25), ("cfsnb", 26)] {
            ok("mkdir hosts/\(name) && echo '\(nodes[name]!)' > hosts/\(name)/uri && echo 10.250.0.\(index):7355 > hosts/\(name)/agent")
            XCTAssertEqual(read("hosts/\(name)/state"), "up", read("hosts/\(name)/fault"))
            XCTAssertEqual(read("hosts/\(name)/tunnel_ip"), "10.250.0.\(index)")
        }
        ok("echo disable > hosts/local/ctl && echo disable > hosts/cfsnb/ctl")

        // Two vxlan networks; the default is vxlan, so each project gets its own.
        ok("mkdir networks/pa && echo 10.70.0.0/24 > networks/pa/cidr && echo vxlan > networks/pa/mode")
        ok("mkdir networks/pb && echo 10.71.0.0/24 > networks/pb/cidr && echo vxlan > networks/pb/mode")
        ok("echo pa > defaults/network")
        ok("mkdir users/\(user) projects/p2 && echo '\(user) member' > projects/p2/members")

        // Images: one kernel and initramfs, three roots whose command lines differ.
        let guest = TestPaths.guestDir
        ok("cp '\(guest)/vmlinuz' images/vmlinuz && cp '\(guest)/initramfs.gz' images/initrd")
        ok("qemu-img create -q -f qcow2 '\(work)/root.qcow2' 64M")
        let cmdlines = ["tiny": "console=ttyS0 cloudfs.ticks=1 cloudfs.metadata=1",
                        "pingb": "console=ttyS0 cloudfs.ping=10.70.0.2 cloudfs.metadata=1",
                        "pingc": "console=ttyS0 cloudfs.ip2=10.70.0.99/24 cloudfs.ping=10.70.0.2 cloudfs.metadata=1"]
        for (image, cmdline) in cmdlines {
            ok("cp '\(work)/root.qcow2' images/\(image) && echo vmlinuz > images.d/\(image)/properties/kernel")
            ok("echo initrd > images.d/\(image)/properties/ramdisk && echo '\(cmdline)' > images.d/\(image)/properties/cmdline")
            ok("echo public > images.d/\(image)/visibility")
        }
        ok("echo public > images.d/vmlinuz/visibility && echo public > images.d/initrd/visibility && echo m1.nano > defaults/flavor")

        // A (project one) and C (project two) on cfsna; B (project one) on cfsnb.
        ok("echo tiny > defaults/image && mkdir instances/a")
        active("a")
        XCTAssertEqual(read("instances/a/ip"), "10.70.0.2")
        XCTAssertEqual(read("instances/a/host"), "cfsna")
        ok("echo pingc > defaults/image")
        let c = asUser("mkdir instances/c && timeout 150 cat instances/c/wait")
        XCTAssertEqual(c.out, "ACTIVE\n", "\(c.err) \(read("instances/c/fault"))")
        XCTAssertEqual(read("instances/c/host"), "cfsna")
        XCTAssertTrue(read("instances/c/ip").hasPrefix("10.71.0."), "project two got network pb: \(read("instances/c/ip"))")
        XCTAssertEqual(read("networks/pb/project"), "p2")
        ok("echo disable > hosts/cfsna/ctl && echo enable > hosts/cfsnb/ctl && echo pingb > defaults/image && mkdir instances/b")
        active("b")
        XCTAssertEqual(read("instances/b/host"), "cfsnb")
        ok("echo enable > hosts/cfsna/ctl")

        // Each guest took its address from its own host's local DHCP port.
        for (name, ip) in [("a", "10.70.0.2"), ("b", read("instances/b/ip")), ("c", read("instances/c/ip"))] {
            let got = consoleLines(name, "CLOUDFS-DHCP-") { !$0.isEmpty }
            XCTAssertEqual(got, ["CLOUDFS-DHCP-ADDRESS=\(ip)"], "\(name): " + read("instances/\(name)/console").suffix(600))
        }
        // ...and its own metadata from the metadata service on that port (169.254.169.254,
        // routed there by DHCP), though C also holds an address in A's subnet.
        let ids = ["a", "b", "c"].map { read("instances/\($0)/id") }
        for (name, id) in zip(["a", "b", "c"], ids) {
            let meta = consoleLines(name, "CLOUDFS-METADATA") { !$0.isEmpty }
            XCTAssertEqual(meta.count, 1, "\(name): " + read("instances/\(name)/console").suffix(600))
            XCTAssertTrue(meta.first?.contains(id) ?? false, "\(name) got its own metadata: \(meta)")
            XCTAssertFalse(ids.filter { $0 != id }.contains { meta.first?.contains($0) ?? false }, "\(name) got another's: \(meta)")
        }
        for (host, net) in [("cfsna", "pa"), ("cfsna", "pb"), ("cfsnb", "pa")] {
            let port = inHost(host, "ip link show dev dhp\(read("networks/\(net)/vni")) 2>&1")
            XCTAssertTrue(port.contains("master \(read("networks/\(net)/bridge")) "), "\(host) has the local port of \(net): \(port)")
        }
        XCTAssertTrue(inHost("cfsna", "nft list table bridge cloudfs_localport").contains("ether saddr { 0a:cf:00:00:01:01, 0a:cf:00:00:02:01 } drop"),
                      inHost("cfsna", "nft list table bridge cloudfs_localport"))

        // The agents built exactly the segments their guests need.
        XCTAssertEqual(Set(read("hosts/cfsna/segments").split(separator: "\n")), ["pa", "pb"])
        XCTAssertEqual(read("hosts/cfsnb/segments"), "pa")
        let fdbA = inHost("cfsna", "bridge fdb show dev vxlan1")
        XCTAssertTrue(fdbA.contains("00:00:00:00:00:00 dst 10.250.0.26") && fdbA.contains("\(read("instances/b/mac")) dst 10.250.0.26"), fdbA)
        XCTAssertEqual(inHost("cfsna", "bridge fdb show dev vxlan2 | grep -c ' dst '").trimmingCharacters(in: .whitespacesAndNewlines), "0",
                       "project two's segment has no other host")

        // The default group lets nothing in: cfsna's agent filters A's port, B's pings are lost.
        let filter = inHost("cfsna", "nft list table inet cloudfs_filter")
        XCTAssertTrue(filter.contains("10.70.0.2 : jump"), filter)
        let denied = pings("b", atLeast: 3)
        XCTAssertGreaterThanOrEqual(denied.count, 3, read("instances/b/console").suffix(800).description)
        XCTAssertEqual(denied.filter { $0.1 == "ok" }.count, 0, "the default group let B's ping in: \(denied)")
        // Once ICMP is allowed, B reaches A across the hosts; C, beside A and in A's subnet, does not.
        ok("printf 'icmp - 0.0.0.0/0\\n' > security-groups/default/rules")
        let fromB = pings("b", after: denied.map(\.0).max() ?? 0, atLeast: 3)
        XCTAssertGreaterThanOrEqual(fromB.count, 3, read("instances/b/console").suffix(800).description)
        XCTAssertTrue(fromB.contains { $0.1 == "ok" }, "B pings A over VXLAN: \(read("instances/b/console").suffix(800))")
        let fromC = pings("c", atLeast: 5)
        XCTAssertTrue(read("instances/c/console").contains("CLOUDFS-SECOND-ADDRESS=10.70.0.99"), read("instances/c/console").suffix(800).description)
        XCTAssertGreaterThanOrEqual(fromC.count, 5, read("instances/c/console").suffix(800).description)
        XCTAssertEqual(fromC.filter { $0.1 == "ok" }.count, 0, "another project's guest reaches A: \(fromC)")

        // A moves to cfsnb while counting: same boot, B's pings go on answering.
        let before = ticks("a")
        ok("echo live-migrate cfsnb > instances/a/ctl")
        active("a")
        XCTAssertEqual(read("instances/a/host"), "cfsnb")
        let lastPing = pings("b", atLeast: 1).map(\.0).max() ?? 0
        let after = pings("b", after: lastPing, atLeast: 3)
        XCTAssertGreaterThanOrEqual(after.count, 3, "B pings on after the migration: \(after)")
        XCTAssertTrue(after.suffix(2).allSatisfy { $0.1 == "ok" }, "B's pings after the migration: \(after)")
        _ = consoleLines("a", "CLOUDFS-TICK ") { _ in self.ticks("a").last > before.last + 2 }
        XCTAssertGreaterThan(ticks("a").last, before.last + 2)
        XCTAssertEqual(ticks("a").boots, before.boots, "the guest never rebooted")
        XCTAssertEqual(read("instances/a/console").components(separatedBy: "CLOUDFS-GUEST-BOOTED").count, 2)
        XCTAssertEqual(read("instances/a/fault"), "")
        let history = read("instances/a/migrations")
        XCTAssertTrue(history.contains("live cfsna -> cfsnb completed took_ms=") && history.contains("downtime_ms="), history)
        XCTAssertTrue(read("instances/a/migration").hasPrefix("status completed"), read("instances/a/migration"))
        XCTAssertTrue(read("events").contains("instance.live_migrated a from=cfsna to=cfsnb"))
        // Exactly one domain, on the destination; the source holds no disk and no claim.
        let id = read("instances/a/id"), pool = String(read("hosts/cfsna/storage").split(separator: " ").last ?? "")
        XCTAssertFalse(sh("virsh -c '\(nodes["cfsna"]!)' list --all --uuid").out.contains(id))
        XCTAssertTrue(sh("virsh -c '\(nodes["cfsnb"]!)' list --all --uuid").out.contains(id))
        XCTAssertFalse(sh("virsh -c '\(nodes["cfsna"]!)' vol-list \(pool)").out.contains("\(id).disk"))
        XCTAssertTrue(sh("virsh -c '\(nodes["cfsnb"]!)' vol-list \(pool)").out.contains("\(id).disk"))
        XCTAssertEqual(read("hosts/cfsna/instances"), "c")
        XCTAssertEqual(read("hosts/cfsnb/instances"), "a\nb")
        // cfsna no longer carries project one's segment (only C's is left there).
        _ = consoleLines("a", "") { _ in self.read("hosts/cfsna/segments") == "pb" }
        XCTAssertEqual(read("hosts/cfsna/segments"), "pb")
        XCTAssertNotEqual(sh("ip netns exec cfs-cfsna ip link show dev vxlan1").status, 0, "the agent removed pa's device on cfsna")
        XCTAssertNotEqual(sh("ip netns exec cfs-cfsna ip link show dev dhp1").status, 0, "and pa's local DHCP port")

        // A stopped agent takes its host down, with the reason; it comes back with it.
        sh("'\(computeHostScript)' agent-stop cfsnb")
        _ = consoleLines("a", "") { _ in self.read("hosts/cfsnb/state") == "down" }
        XCTAssertEqual(read("hosts/cfsnb/state"), "down")
        XCTAssertTrue(read("hosts/cfsnb/fault").contains("agent of cfsnb at 10.250.0.26:7355"), read("hosts/cfsnb/fault"))
        XCTAssertTrue(read("events").contains("host.down cfsnb"), read("events").suffix(500).description)
        sh("'\(computeHostScript)' agent-start cfsnb")
        _ = consoleLines("a", "") { _ in self.read("hosts/cfsnb/state") == "up" }
        XCTAssertEqual(read("hosts/cfsnb/state"), "up", read("hosts/cfsnb/fault"))

        // Cold migration (Nova's migrate) takes B to cfsna, which carries pa again: B boots
        // there, takes the same address and its own metadata from cfsna's local port, and
        // reaches A on cfsnb over VXLAN.
        ok("echo 'migrate cfsna' > instances/b/ctl")
        active("b")
        XCTAssertEqual(read("instances/b/host"), "cfsna")
        XCTAssertEqual(Set(read("hosts/cfsna/segments").split(separator: "\n")), ["pa", "pb"])
        func secondBoot() -> [String] {
            let parts = read("instances/b/console").components(separatedBy: "CLOUDFS-GUEST-BOOTED")
            return parts.count < 3 ? [] : parts[2].split(whereSeparator: \.isNewline).map(String.init)
        }
        _ = consoleLines("b", "") { _ in Self.pingedAndFetched(secondBoot()) }
        let moved = secondBoot()
        XCTAssertTrue(moved.contains("CLOUDFS-DHCP-ADDRESS=\(read("instances/b/ip"))"), read("instances/b/console").suffix(800).description)
        XCTAssertTrue(moved.contains { $0.hasPrefix("CLOUDFS-METADATA ") && $0.contains(ids[1]) }, moved.joined(separator: "\n"))
        XCTAssertTrue(moved.contains { $0.hasPrefix("CLOUDFS-PING ") && $0.hasSuffix(" ok") }, "B reaches A from cfsna: \(moved.suffix(5))")

        // This machine joins with its own agent: D, built here, gets its address and
        // metadata from the local port here and reaches A on cfsnb.
        ok("echo 10.250.0.24:7355 > hosts/local/agent && echo enable > hosts/local/ctl")
        XCTAssertEqual(read("hosts/local/state"), "up", read("hosts/local/fault"))
        XCTAssertEqual(read("hosts/local/tunnel_ip"), "10.250.0.24")
        ok("echo disable > hosts/cfsna/ctl && echo disable > hosts/cfsnb/ctl && mkdir instances/d")
        active("d")
        XCTAssertEqual(read("instances/d/host"), "local")
        XCTAssertEqual(read("hosts/local/segments"), "pa")
        let d = consoleLines("d", "CLOUDFS-") { Self.pingedAndFetched($0) }
        XCTAssertTrue(d.contains("CLOUDFS-DHCP-ADDRESS=\(read("instances/d/ip"))"), read("instances/d/console").suffix(800).description)
        XCTAssertTrue(d.contains { $0.hasPrefix("CLOUDFS-METADATA ") && $0.contains(read("instances/d/id")) }, d.joined(separator: "\n"))
        XCTAssertTrue(d.contains { $0.hasPrefix("CLOUDFS-PING ") && $0.hasSuffix(" ok") }, "D reaches A on cfsnb: \(d.suffix(5))")
        XCTAssertTrue(inHost("cfsnb", "bridge fdb show dev vxlan1").contains("\(read("instances/d/mac")) dst 10.250.0.24"),
                      "cfsnb sends D's frames to this machine")
    }
}
