import CloudTesting
import Foundation
import XCTest

/// A cloud whose daemon runs inside a network namespace this test creates (`nsenter
/// --net=...`; its FUSE mount stays visible here) with `--manage-network`, so bridges,
/// dnsmasq and nftables are real and nothing leaves the namespace. Whatever the daemon
/// started (dnsmasq, QEMU) is killed and the namespace deleted, even after a failure.
class NamespaceMountTestCase: MountTestCase {
    var namespace = ""

    override func setUpWithError() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root (network namespaces, bridges, nftables)") }
        guard FileManager.default.fileExists(atPath: "/dev/fuse") else { throw XCTSkip("no /dev/fuse") }
        for tool in ["/usr/bin/nsenter", "/usr/sbin/dnsmasq", "/usr/sbin/nft", "/usr/sbin/ip"]
        where !FileManager.default.isExecutableFile(atPath: tool) {
            throw XCTSkip("\(tool) is not installed (scripts/install-deps.sh installs it)")
        }
        namespace = "cfs-\(getpid())-\(UUID().uuidString.prefix(8).lowercased())"
        let r = sh("ip netns add \(namespace) && ip netns exec \(namespace) ip link set lo up")
        guard r.status == 0 else { throw XCTSkip("cannot create a network namespace: \(r.err)") }
        try super.setUpWithError()
    }

    /// `cloudfs mount` inside the namespace, with the host's networking managed.
    override func mount(extra: [String] = [], env: String = "") throws {
        let args = env + " " + (["nsenter", "--net=/var/run/netns/\(namespace)", cloudfs, "mount", mnt, "--state", state, "--manage-network"]
                    + hostArgs + extra).map { "'\($0)'" }.joined(separator: " ")
        let r = sh(args, timeout: 120)
        guard r.status == 0 else {
            throw NSError(domain: "mount", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: "cloudfs mount failed: \(r.out) \(r.err)"])
        }
    }

    override func tearDown() {
        guard !namespace.isEmpty else { return super.tearDown() }
        super.tearDown()   // rmdir every instance, unmount, stop dnsmasq and guests, remove the work directory
        sh("ip netns del \(namespace)")
    }

    /// Runs `script` inside the namespace.
    func inNamespace(_ script: String, timeout: TimeInterval = 30) -> Shell {
        sh("nsenter --net=/var/run/netns/\(namespace) bash -c \(shellQuote(script))", timeout: timeout)
    }

    func shellQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
