import Foundation
import XCTest

/// Glance through the tree: cp in/out, ls -l, metadata, xattrs, refusals, killed writers.
final class ImageMountTests: MountTestCase {
    func testCpInOutChecksumAndMetadata() {
        let src = makeFile("disk.raw", mib: 3)
        ok("cp '\(src)' images/disk")
        XCTAssertEqual(ok("stat -c %s images/disk").trimmingCharacters(in: .whitespacesAndNewlines), "\(3 << 20)")
        XCTAssertTrue(ok("ls -l images").contains("disk"))
        ok("cp images/disk '\(work)/out.raw' && cmp '\(src)' '\(work)/out.raw'")
        let sha = sh("sha256sum '\(src)' | cut -d' ' -f1").out.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(read("images.d/disk/checksum"), sha)
        XCTAssertEqual(read("images.d/disk/status"), "active")
        XCTAssertEqual(read("images.d/disk/format"), "raw")
        XCTAssertEqual(read("images.d/disk/size"), "\(3 << 20)")
        let xattr = ok("getfattr --only-values -n user.cloud.checksum images/disk")
        XCTAssertEqual(xattr.trimmingCharacters(in: .whitespacesAndNewlines), sha)
        ok("mv images/disk images/disk2")
        XCTAssertEqual(ok("ls images").trimmingCharacters(in: .whitespacesAndNewlines), "disk2")
        ok("rm images/disk2")
        XCTAssertEqual(ok("ls images"), "")
        XCTAssertEqual(storedImageFiles(), [])
    }

    func testQcow2IsInspected() {
        ok("qemu-img create -q -f qcow2 '\(work)/q.qcow2' 2G && cp '\(work)/q.qcow2' images/q")
        XCTAssertEqual(read("images.d/q/format"), "qcow2")
        XCTAssertEqual(read("images.d/q/virtual_size"), "\(2 << 30)")
    }

    func testBackingFileIsRefusedAndLeavesNothing() {
        ok("qemu-img create -q -f qcow2 '\(work)/base.qcow2' 64M && qemu-img create -q -f qcow2 -F qcow2 -b '\(work)/base.qcow2' '\(work)/evil.qcow2'")
        let err = fails("cp '\(work)/evil.qcow2' images/evil")
        XCTAssertTrue(err.contains("Invalid argument"), err)
        XCTAssertEqual(ok("ls images"), "")
        XCTAssertEqual(storedImageFiles(), [])
        XCTAssertTrue(read("events").contains("backing"), "the reason is in /events")
    }

    func testKilledWriterNeverBecomesActive() {
        // A writer that is SIGKILLed mid-upload: the image never becomes active, no bytes stay.
        let writer = "import time\nf = open('images/partial', 'wb')\nwhile True:\n    f.write(bytes(1 << 20)); f.flush(); time.sleep(0.05)\n"
        try? writer.write(toFile: work + "/writer.py", atomically: true, encoding: .utf8)
        sh("cd '\(mnt)' && { python3 '\(work)/writer.py' & pid=$!; sleep 1.5; kill -9 $pid; wait $pid; }")
        var listed = "x"
        for _ in 0..<50 {
            listed = ok("ls images")
            if listed.isEmpty { break }
            usleep(100_000)
        }
        XCTAssertEqual(listed, "")
        XCTAssertEqual(storedImageFiles(), [])
        XCTAssertTrue(read("events").contains("image.killed partial"), read("events"))
    }

    func testShellRedirectUploadCommits() {
        // bash opens, dup2s and closes the original descriptor before cat writes anything.
        ok("bash -c 'cat /etc/os-release > images/osrel'")
        XCTAssertEqual(read("images.d/osrel/status"), "active")
        XCTAssertEqual(ok("cat images/osrel"), try! String(contentsOfFile: "/etc/os-release", encoding: .utf8))
    }
}
