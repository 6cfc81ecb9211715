import CloudTesting
import Foundation
import XCTest

/// Host networking has an owner and an end: a remount adopts the dnsmasq it left running,
/// and `cloudfs unmount --teardown-network` removes every dnsmasq, bridge, route and
/// nftables table the cloud made, once no instance is left (refusing before it unmounts
/// anything otherwise). test:/// hosts: the networking is real, the guests are not.
final class NetworkTeardownMountTests: NamespaceMountTestCase {
    /// The live (not zombie) dnsmasq processes started from this cloud's state directory.
    func dnsmasqOfThisCloud() -> [Int32] {
        let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return procs.compactMap { Int32($0) }.filter { pid in
            let cmd = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            return cmd.contains("dnsmasq") && cmd.contains(state + "/") && StateLockMountTests.alive(pid)
        }.sorted()
    }

    func teardownCommand(_ extra: String = "") -> String {
        "'\(cloudfs)' unmount --teardown-network \(extra) '\(mnt)'"
    }

    func testTeardownRemovesEverythingOnceNoInstanceIsLeft() throws {
        ok("echo 10.99.0.0/24 > networks/default/floating_range")
        addDiskImage()
        ok("mkdir instances/web1 && cat instances/web1/wait")
        let dnsmasq = dnsmasqOfThisCloud()
        XCTAssertEqual(dnsmasq.count, 1, "one dnsmasq for the default network")
        XCTAssertEqual(inNamespace("ip link show br100").status, 0)

        // Refused while an instance exists, before anything is unmounted.
        let busy = inNamespace(teardownCommand())
        XCTAssertNotEqual(busy.status, 0)
        XCTAssertTrue(busy.err.contains("EBUSY") && busy.err.contains("instance web1"), busy.err)
        XCTAssertTrue(isMounted(), "a refused teardown unmounts nothing")
        XCTAssertEqual(read("instances/web1/status"), "ACTIVE")

        // From the wrong namespace: refused, naming the right one.
        let elsewhere = sh(teardownCommand())
        XCTAssertNotEqual(elsewhere.status, 0)
        XCTAssertTrue(elsewhere.err.contains("nsenter --net=/var/run/netns/\(namespace)"), elsewhere.err)
        XCTAssertTrue(isMounted())

        // Unmount without the teardown and mount again: the dnsmasq is adopted, not doubled.
        ok("rmdir instances/web1")
        unmount()
        XCTAssertEqual(dnsmasqOfThisCloud(), dnsmasq, "host networking outlives an unmount")
        try mount()
        XCTAssertEqual(dnsmasqOfThisCloud(), dnsmasq, "exactly one dnsmasq per network, the same one")
        XCTAssertTrue(inNamespace("nft list tables").out.contains("cloudfs_nat"))
        XCTAssertTrue(inNamespace("ip route").out.contains("10.99.0.0/24 dev br100"))

        // The end.
        let done = inNamespace(teardownCommand(), timeout: 90)
        XCTAssertEqual(done.status, 0, done.err)
        XCTAssertTrue(done.out.contains("dnsmasq stopped: default (pid \(dnsmasq.first ?? 0))"), done.out)
        XCTAssertFalse(isMounted())
        XCTAssertEqual(dnsmasqOfThisCloud(), [], "no dnsmasq of this state directory is left running")
        XCTAssertNotEqual(inNamespace("ip link show br100").status, 0, "the bridge is gone")
        XCTAssertFalse(inNamespace("nft list tables").out.contains("cloudfs"), "the nftables tables are gone")
        XCTAssertFalse(inNamespace("ip route").out.contains("10.99.0.0/24"), "the floating route is gone")

        // Done again (given the state, the daemon being gone): nothing left to stop.
        let again = inNamespace(teardownCommand("--state '\(state)'"))
        XCTAssertEqual(again.status, 0, again.err)
        XCTAssertTrue(again.out.contains("dnsmasq stopped: none running"), again.out)

        // The cloud mounts again and makes its networking anew; the teardown is in /events.
        try mount()
        XCTAssertEqual(dnsmasqOfThisCloud().count, 1)
        XCTAssertTrue(read("events").contains("network.teardown - networks=default links=br100 dnsmasq=default"), read("events"))
    }
}
