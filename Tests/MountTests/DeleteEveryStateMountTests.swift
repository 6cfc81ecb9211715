import Foundation
import XCTest

/// `rmdir` in every state, after Tempest's test_delete_server: while building, ACTIVE,
/// SHUTOFF, PAUSED, SUSPENDED, ERROR, while another action runs, and locked (as admin).
/// Each time rmdir succeeds, the instance leaves `ls instances`, the host gives its
/// resources and its domain back, and the instance's IP is handed out again.
final class DeleteEveryStateMountTests: MountTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        ok("head -c 1M /dev/zero > '\(work)/d.raw' && cp '\(work)/d.raw' images/disk && echo m1.nano > defaults/flavor")
    }

    /// Builds `name` and waits for ACTIVE; returns its IP.
    func active(_ name: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        XCTAssertEqual(ok("mkdir instances/\(name) && timeout 30 cat instances/\(name)/wait", file: file, line: line),
                       "ACTIVE\n", file: file, line: line)
        return read("instances/\(name)/ip")
    }

    /// Waits until `name` is no longer listed; false after 30 s.
    func waitGone(_ name: String) -> Bool {
        for _ in 0..<300 {
            if !ok("ls instances").split(separator: "\n").contains(Substring(name)) { return true }
            usleep(100_000)
        }
        return false
    }

    /// rmdir's promise: the directory goes, the host is empty again, and the freed IP is
    /// the one the next instance gets (the pool hands out the lowest free address).
    func assertDeleted(_ name: String, freedIP ip: String?, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(waitGone(name), "\(name) is still there: \(read("instances/\(name)/status")) "
                      + read("instances/\(name)/fault"), file: file, line: line)
        XCTAssertEqual(read("hosts/default/instances"), "", "a domain remains", file: file, line: line)
        for used in ["vcpus_used", "ram_mb_used", "disk_gb_used"] {
            XCTAssertEqual(read("hosts/default/\(used)"), "0", used, file: file, line: line)
        }
        XCTAssertTrue(read("events").contains("instance.deleted \(name)"), file: file, line: line)
        guard let ip else { return }
        XCTAssertEqual(active("probe", file: file, line: line), ip, "the IP was not freed", file: file, line: line)
        ok("rmdir instances/probe", file: file, line: line)
        XCTAssertTrue(waitGone("probe"), file: file, line: line)
    }

    func testDeleteWhileBuilding() {
        // The build runs asynchronously: right after mkdir the instance is still in BUILD.
        let seen = ok("mkdir instances/b && cat instances/b/status && rmdir instances/b")
        print("status when rmdir was called: \(seen.trimmingCharacters(in: .whitespacesAndNewlines))")
        assertDeleted("b", freedIP: "10.0.0.2")
    }

    func testDeleteActive() {
        let ip = active("a")
        ok("rmdir instances/a")
        assertDeleted("a", freedIP: ip)
    }

    func testDeleteShutoff() {
        let ip = active("s")
        XCTAssertEqual(ok("echo stop > instances/s/ctl && timeout 30 cat instances/s/wait"), "SHUTOFF\n")
        ok("rmdir instances/s")
        assertDeleted("s", freedIP: ip)
    }

    func testDeletePaused() {
        let ip = active("p")
        XCTAssertEqual(ok("echo pause > instances/p/ctl && timeout 30 cat instances/p/wait"), "PAUSED\n")
        ok("rmdir instances/p")
        assertDeleted("p", freedIP: ip)
    }

    func testDeleteSuspended() {
        let ip = active("z")
        XCTAssertEqual(ok("echo suspend > instances/z/ctl && timeout 30 cat instances/z/wait"), "SUSPENDED\n")
        ok("rmdir instances/z")
        assertDeleted("z", freedIP: ip)
    }

    func testDeleteVerifyResize() {
        let ip = active("v")
        XCTAssertEqual(ok("echo m1.tiny > instances/v/flavor && timeout 30 cat instances/v/wait"), "VERIFY_RESIZE\n")
        ok("rmdir instances/v")
        assertDeleted("v", freedIP: ip)
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: state + "/instances")) ?? [], [],
                       "the resize backup went with the instance")
    }

    func testDeleteDuringResize() {
        let ip = active("w")
        ok("echo m1.tiny > instances/w/flavor && rmdir instances/w")
        assertDeleted("w", freedIP: ip)
    }

    func testDeleteError() {
        // A flavor no host can hold: the build ends in ERROR, having released what it took.
        ok("mkdir flavors/giant && echo 16000000 > flavors/giant/ram_mb && echo giant > defaults/flavor")
        XCTAssertEqual(ok("mkdir instances/e && timeout 30 cat instances/e/wait"), "ERROR\n")
        XCTAssertEqual(read("instances/e/ip"), "")
        ok("rmdir instances/e")
        assertDeleted("e", freedIP: nil)
        ok("echo m1.nano > defaults/flavor")
        XCTAssertEqual(active("after"), "10.0.0.2")
    }

    func testDeleteRightAfterStop() {
        let ip = active("t")
        ok("echo stop > instances/t/ctl && rmdir instances/t")
        assertDeleted("t", freedIP: ip)
    }

    func testDeleteDuringReboot() {
        let ip = active("r")
        ok("echo reboot > instances/r/ctl && rmdir instances/r")
        assertDeleted("r", freedIP: ip)
    }

    func testDeleteLockedAsAdmin() {
        let ip = active("l")
        ok("echo lock > instances/l/ctl")
        XCTAssertTrue(read("events").contains("instance.locked l"))
        ok("rmdir instances/l")   // root is an admin: a lock does not stop it (Nova's policy)
        assertDeleted("l", freedIP: ip)
    }

    func testRmdirTwiceWhileDeletingIsAccepted() {
        let ip = active("twice")
        ok("rmdir instances/twice; rmdir instances/twice 2>/dev/null; true")
        assertDeleted("twice", freedIP: ip)
    }
}
