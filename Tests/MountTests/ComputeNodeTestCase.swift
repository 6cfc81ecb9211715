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
    /// name → URI of the hosts this test started (their plain `qemu+tcp://` URIs).
    var nodes: [String: String] = [:]
    /// The hosts `setUp` starts: name and underlay index (10.250.0.INDEX).
    var hostSpecs: [(name: String, index: Int)] { [("cfsta", 21), ("cfstb", 22)] }

    /// Starts one host of `hostSpecs`; subclasses add transports.
    func startHost(_ name: String, index: Int) throws -> String { try startComputeHost(name, index: index) }

    override func setUpWithError() throws {
        guard getuid() == 0 else { throw XCTSkip("remote hosts need root (network and mount namespaces)") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/libvirtd") else { throw XCTSkip("libvirtd is not installed") }
        try super.setUpWithError()
        for (name, index) in hostSpecs {
            nodes[name] = try startHost(name, index: index)
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
        virsh(node, "vol-list \(pool(node))").split(separator: "\n").dropFirst(2)
            .compactMap { $0.split(separator: " ", omittingEmptySubsequences: true).first.map(String.init) }
    }

    /// The cloud's pool, as `hosts/NAME/storage` names it (`pool cloudfs-ID`).
    func pool(_ node: String = "cfsta") -> String { String(read("hosts/\(node)/storage").split(separator: " ").last ?? "") }

    /// `mkdir hosts/NODE` with its URI (by default the host's `qemu+tcp://` one).
    func register(_ node: String, uri: String? = nil) {
        ok("mkdir hosts/\(node) && echo '\(uri ?? nodes[node]!)' > hosts/\(node)/uri")
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

    /// Starts host `name` at 10.250.0.`index`; returns its `qemu+tcp://` URI. `agentPKI`: a
    /// directory from `cloudfs agent-credentials`, to run `cloudfs agent` there too.
    /// `tlsPKI`: such a directory (with libvirt-pki/), for libvirtd to listen on TLS as well.
    /// `sshKey`: a public key file, for sshd there to let in as root.
    func startComputeHost(_ name: String, index: Int, agentPKI: String? = nil, tlsPKI: String? = nil,
                          sshKey: String? = nil) throws -> String {
        var env = agentPKI.map { "CLOUDFS_AGENT_BIN='\(cloudfs)' CLOUDFS_AGENT_PKI='\($0)' " } ?? ""
        if let tlsPKI { env += "CLOUDFS_AGENT_PKI='\(tlsPKI)' " }
        if let sshKey { env += "CLOUDFS_HOST_SSH_KEY='\(sshKey)' " }
        let r = sh("\(env)'\(computeHostScript)' start \(name) \(index) '\(work)'", timeout: 60)
        guard r.status == 0, let uri = r.out.split(separator: "\n").last.map(String.init), uri.hasPrefix("qemu+tcp://") else {
            throw NSError(domain: "compute-host", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: "\(r.out) \(r.err)"])
        }
        return uri
    }

    func stopComputeHost(_ name: String) { sh("'\(computeHostScript)' stop \(name)", timeout: 60) }
}
