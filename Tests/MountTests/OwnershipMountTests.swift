import Foundation
import XCTest

/// Point 8 of the foundation: each object records the uid that created it and reports it
/// as `st_uid`; with `--allow-other` the kernel enforces the modes the tree reports.
final class OwnershipMountTests: MountTestCase {
    let asNobody = "setpriv --reuid=65534 --regid=65534 --clear-groups"

    override func mount(extra: [String] = [], env: String = "") throws {
        try super.mount(extra: extra + ["--allow-other"], env: env)
    }

    override func setUpWithError() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            throw XCTSkip("needs root and setpriv")
        }
        try super.setUpWithError()
        // The work directory is private to root; let the other user reach the mount and files.
        sh("chmod 755 '\(work)'")
    }

    func testCreatorUIDIsStUIDAndOthersCannotTouchIt() {
        // nobody is a registered user and a member of project p1 (through the tree).
        ok("mkdir users/nobody projects/p1 && echo 'nobody member' > projects/p1/members")
        ok("head -c 1M /dev/zero > '\(work)/d.raw' && chmod 644 '\(work)/d.raw' && \(asNobody) cp '\(work)/d.raw' images/theirs")
        XCTAssertEqual(ok("stat -c %u images/theirs").trimmingCharacters(in: .whitespacesAndNewlines), "65534")
        XCTAssertEqual(read("images.d/theirs/project"), "p1")
        ok("echo m1.nano > defaults/flavor && echo theirs > defaults/image")
        ok("\(asNobody) mkdir instances/nb && timeout 30 cat instances/nb/wait")
        XCTAssertEqual(ok("stat -c %u instances/nb").trimmingCharacters(in: .whitespacesAndNewlines), "65534")
        XCTAssertEqual(read("instances/nb/status"), "ACTIVE")
        XCTAssertEqual(read("instances/nb/project"), "p1")
        ok("mkdir instances/rootvm && timeout 30 cat instances/rootvm/wait")
        XCTAssertEqual(ok("stat -c %u instances/rootvm").trimmingCharacters(in: .whitespacesAndNewlines), "0")
        // Another project's user may not remove root's instance, nor change the defaults.
        fails("\(asNobody) rmdir instances/rootvm")
        fails("\(asNobody) sh -c 'echo m1.tiny > defaults/flavor'")
        XCTAssertEqual(read("instances/rootvm/status"), "ACTIVE")
        ok("\(asNobody) rmdir instances/nb")
    }
}
