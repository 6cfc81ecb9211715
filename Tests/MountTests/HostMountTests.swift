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
    var daemonDir = ""
    var daemon: Process?

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/libvirtd") else {
            throw XCTSkip("libvirtd is not installed (scripts/install-deps.sh installs libvirt-daemon)")
        }
        try super.setUpWithError()
        daemonDir = work + "/libvirtd"
        try FileManager.default.createDirectory(atPath: daemonDir, withIntermediateDirectories: true)
        try """
        unix_sock_dir = "\(daemonDir)"
        listen_tls = 0
        listen_tcp = 0
        auth_unix_rw = "none"
        auth_unix_ro = "none"
        """.write(toFile: daemonDir + "/libvirtd.conf", atomically: true, encoding: .utf8)
    }

    func startDaemon() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/libvirtd")
        p.arguments = ["--config", daemonDir + "/libvirtd.conf", "--pid-file", daemonDir + "/pid"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        daemon = p
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: daemonDir + "/libvirt-sock") { usleep(50_000) }
    }

    func stopDaemon() {
        guard let p = daemon else { return }
        p.terminate()
        p.waitUntilExit()
        daemon = nil
        try? FileManager.default.removeItem(atPath: daemonDir + "/libvirt-sock")
    }

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
        ok("mkdir hosts/remote && echo 'test+unix:///default?socket=\(daemonDir)/libvirt-sock' > hosts/remote/uri")
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
