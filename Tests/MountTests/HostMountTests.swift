import CloudTesting
import Foundation
import XCTest

/// Hosts through the tree: mkdir + `echo URI > uri` registers one, a URI that does not
/// answer leaves it down with the reason in /events, rmdir of a busy host is EBUSY.
final class HostMountTests: MountTestCase {
    func testRegisterBusyAndUnreachableHosts() {
        let medium = "test://\(TestPaths.packageRoot)/examples/hosts/medium.xml"
        ok("mkdir hosts/extra")
        XCTAssertEqual(read("hosts/extra/state"), "down")
        XCTAssertEqual(read("hosts/extra/uri"), "")
        ok("echo '\(medium)' > hosts/extra/uri")
        XCTAssertEqual(read("hosts/extra/state"), "up")
        XCTAssertEqual(read("hosts/extra/vcpus"), "16")
        XCTAssertTrue(fails("echo 'no uri here' > hosts/extra/uri").contains("Invalid argument"))

        ok("head -c 1M /dev/zero > '\(work)/d.raw' && cp '\(work)/d.raw' images/disk && echo m1.nano > defaults/flavor")
        ok("echo disable > hosts/default/ctl && mkdir instances/x && timeout 30 cat instances/x/wait")
        XCTAssertEqual(read("instances/x/host"), "extra")
        XCTAssertTrue(fails("rmdir hosts/extra").contains("Device or resource busy"))

        // A URI that does not answer: the host is registered but down, with the reason.
        ok("mkdir hosts/dead && echo 'qemu+unix:///system?socket=\(work)/no-such.sock' > hosts/dead/uri")
        XCTAssertEqual(read("hosts/dead/state"), "down")
        XCTAssertTrue(read("events").contains("host.down dead"), read("events"))
        ok("rmdir hosts/dead")
        XCTAssertFalse(ok("ls hosts").contains("dead"))
    }
}

/// A host whose URI stops answering goes down and comes back by itself: a real libvirtd,
/// started by the test on a private socket, serves the test driver and is killed and
/// restarted underneath the mounted cloud.
final class RemoteHostMountTests: MountTestCase {
    var libvirtd: PrivateLibvirtd!

    override func setUpWithError() throws {
        try super.setUpWithError()
        libvirtd = try PrivateLibvirtd(dir: work + "/libvirtd")
    }

    func startDaemon() throws { try libvirtd.start() }
    func stopDaemon() { libvirtd?.stop() }

    override func tearDown() {
        stopDaemon()
        super.tearDown()
    }

    func waitFor(_ state: String, _ host: String, seconds: Int = 20) -> String {
        var now = ""
        for _ in 0..<(seconds * 10) {
            now = read("hosts/\(host)/state")
            if now == state { break }
            usleep(100_000)
        }
        return now
    }

    func testHostWhoseURIStopsAnsweringGoesDownAndReturns() throws {
        try startDaemon()
        ok("mkdir hosts/remote && echo '\(libvirtd.uri)' > hosts/remote/uri")
        XCTAssertEqual(read("hosts/remote/state"), "up")
        XCTAssertEqual(read("hosts/remote/vcpus"), "16")
        stopDaemon()
        XCTAssertEqual(waitFor("down", "remote"), "down", "the health check noticed the dead daemon")
        XCTAssertTrue(read("events").contains("host.down remote"))
        XCTAssertEqual(read("hosts/default/state"), "up", "other hosts are unaffected")
        try startDaemon()
        XCTAssertEqual(waitFor("up", "remote"), "up", "reconnected with backoff")
    }
}
