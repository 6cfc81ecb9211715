import CloudTesting
import Foundation
import XCTest

/// Remote compute hosts (Nova compute nodes reached over libvirt's remote protocol): two
/// libvirtd "machines" on this one, each in its own network and mount namespace
/// (`scripts/compute-host.sh`), reached at `qemu+tcp://10.250.0.N/system`, seeing none of
/// the controller's files. Images reach them through their storage pools, guests boot
/// there, the console comes back through libvirt's console stream. Subclasses test what
/// runs on them.
class ComputeNodeTestCase: GuestMountTestCase {
    /// name → URI of the hosts this test started.
    var nodes: [String: String] = [:]

    override func setUpWithError() throws {
        guard getuid() == 0 else { throw XCTSkip("remote hosts need root (network and mount namespaces)") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/libvirtd") else { throw XCTSkip("libvirtd is not installed") }
        try super.setUpWithError()
        for (name, index) in [("cfsta", 21), ("cfstb", 22)] {
            nodes[name] = try startComputeHost(name, index: index)
        }
    }

    override func tearDown() {
        super.tearDown()   // deletes the instances (the hosts must still answer), unmounts
        for name in nodes.keys { stopComputeHost(name) }
        nodes = [:]
    }

    func virsh(_ node: String, _ args: String) -> String {
        sh("virsh -c '\(nodes[node]!)' \(args)").out
    }

    func volumes(_ node: String) -> [String] {
        // `vol-list` prints a header, a rule, then NAME PATH rows.
        virsh(node, "vol-list \(pool())").split(separator: "\n").dropFirst(2)
            .compactMap { $0.split(separator: " ", omittingEmptySubsequences: true).first.map(String.init) }
    }

    /// The cloud's pool, as `hosts/NAME/storage` names it (`pool cloudfs-ID`).
    func pool() -> String { String(read("hosts/cfsta/storage").split(separator: " ").last ?? "") }

    func register(_ node: String) {
        ok("mkdir hosts/\(node) && echo '\(nodes[node]!)' > hosts/\(node)/uri")
        XCTAssertEqual(read("hosts/\(node)/state"), "up", read("hosts/\(node)/fault"))
    }

    func cachedCount(_ node: String) -> Int {
        read("events").split(separator: "\n").filter { $0.contains(" image.cached ") && $0.contains("host=\(node) ") }.count
    }
}

/// `scripts/compute-host.sh` from a test: a remote host on this machine that hides the
/// controller's whole work directory (state, mount, images), optionally with its agent.
extension MountTestCase {
    var computeHostScript: String { TestPaths.packageRoot + "/scripts/compute-host.sh" }

    /// Starts host `name` at 10.250.0.`index`; returns its URI. `agentPKI`: a directory
    /// from `cloudfs agent-credentials`, to run `cloudfs agent` there too.
    func startComputeHost(_ name: String, index: Int, agentPKI: String? = nil) throws -> String {
        let env = agentPKI.map { "CLOUDFS_AGENT_BIN='\(cloudfs)' CLOUDFS_AGENT_PKI='\($0)' " } ?? ""
        let r = sh("\(env)'\(computeHostScript)' start \(name) \(index) '\(work)'", timeout: 60)
        guard r.status == 0, let uri = r.out.split(separator: "\n").last.map(String.init), uri.hasPrefix("qemu+tcp://") else {
            throw NSError(domain: "compute-host", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: "\(r.out) \(r.err)"])
        }
        return uri
    }

    func stopComputeHost(_ name: String) { sh("'\(computeHostScript)' stop \(name)", timeout: 60) }
}
