import CloudCore
@testable import CloudFS
import Foundation
import XCTest

/// `/instances`: mkdir, status, wait, files, rmdir, interrupts, listings.
final class InstanceTests: MountTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        try cloud.addImage()
    }

    func testLifecycleWithWait() {
        ok("mkdir $MNT/instances/web1")
        XCTAssertEqual(ok("cat $MNT/instances/web1/status"), "BUILD\n")
        XCTAssertTrue(["scheduling\n", "networking\n", "spawning\n"].contains(ok("cat $MNT/instances/web1/task_state")))
        let w = cloud.sh("cat $MNT/instances/web1/wait")
        XCTAssertEqual(w.out, "ACTIVE\n", w.err)
        XCTAssertGreaterThan(w.seconds, 0.2, "wait blocks until the build is done")
        XCTAssertEqual(ok("cat $MNT/instances/web1/status $MNT/instances/web1/power_state"), "ACTIVE\nrunning\n")
        XCTAssertTrue(ok("cat $MNT/instances/web1/ip").hasPrefix("10.0.0."))
        XCTAssertEqual(ok("cat $MNT/instances/web1/host"), "default\n")
        XCTAssertEqual(ok("cat $MNT/instances/web1/fault | wc -c"), "0\n")
        // test:/// guests write no console; QemuBootMountTests reads a real one.
        XCTAssertEqual(ok("tail -n 1 $MNT/instances/web1/console | wc -c"), "0\n")
        XCTAssertTrue(ok("cat $MNT/instances/web1/domain.xml").hasPrefix("<domain"))
        XCTAssertEqual(ok("cat $MNT/instances/web1/wait"), "ACTIVE\n", "stable: returns at once")
        let json = ok("cat $MNT/instances/web1/info.json")
        let obj = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        XCTAssertEqual(obj?["status"] as? String, "ACTIVE")
        XCTAssertEqual(obj?["name"] as? String, "web1")
        // 19 of SPEC's table so far (with floating_ip, security_groups) + group + ctl + actions
        // + volumes/ + key_name, user_data, metadata/, ssh, tty + locked + migrations, migration
        XCTAssertEqual(ok("ls $MNT/instances/web1 | wc -l"), "\(31)\n")
        XCTAssertEqual(ok("cat $MNT/instances/web1/locked"), "")
        ok("echo lock > $MNT/instances/web1/ctl")
        XCTAssertEqual(ok("cat $MNT/instances/web1/locked"), "admin\n", "root is an admin: Nova's locked_by")
        ok("echo unlock > $MNT/instances/web1/ctl")
        XCTAssertEqual(ok("stat -c '%a %u' $MNT/instances/web1 $MNT/instances/web1/status $MNT/instances/web1/flavor"),
                       "755 0\n444 0\n644 0\n")
        XCTAssertTrue(ok("cat $MNT/hosts/default/instances").contains("web1"))
        // rmdir works on the non-empty directory; it stays listed (DELETING) until gone.
        ok("rmdir $MNT/instances/web1")
        XCTAssertEqual(ok("cat $MNT/instances/web1/status"), "DELETING\n")
        XCTAssertEqual(ok("ls $MNT/instances"), "web1\n")
        XCTAssertTrue(cloud.eventually { self.ok("ls $MNT/instances") == "" })
        XCTAssertNotEqual(cloud.sh("stat $MNT/instances/web1").status, 0)
        // The name can be used again at once.
        ok("mkdir $MNT/instances/web1 && cat $MNT/instances/web1/wait")
    }

    /// The staleness race of a delete: the name fails `stat` the moment it leaves the
    /// listing, while the kernel invalidation for it is still queued (held here).
    func testADeletedNameFailsStatOnceItLeavesTheListing() {
        ok("mkdir $MNT/instances/gone && cat $MNT/instances/gone/wait")
        ok("rmdir $MNT/instances/gone")
        // Looked up again while DELETING: the kernel holds the name once more.
        XCTAssertEqual(ok("cat $MNT/instances/gone/status"), "DELETING\n")
        let held = DispatchSemaphore(value: 0)
        cloud.fs.invalidator.run { held.wait() }
        defer { held.signal() }
        XCTAssertTrue(cloud.eventually { self.ok("ls $MNT/instances") == "" })
        let r = cloud.sh("stat -c %n $MNT/instances/gone")
        XCTAssertNotEqual(r.status, 0, "a gone name is not served from the kernel's cache: " + r.out)
        XCTAssertTrue(r.err.contains("No such file or directory"), r.err)
    }

    /// `ls -l /instances` is answered from the listing's entries (not each instance's full
    /// info): names in order, and each directory's mode, links, owner and creation time.
    func testListingShowsEachDirectorysAttributes() {
        ok("mkdir $MNT/instances/b2 $MNT/instances/a1 && cat $MNT/instances/a1/wait $MNT/instances/b2/wait")
        XCTAssertEqual(ok("ls $MNT/instances"), "a1\nb2\n")
        let listed = ok("ls -ln --time-style=+%s $MNT/instances | awk 'NR>1 {print $1, $2, $3, $6, $7}'")
        let expected = ok("cd $MNT/instances && for i in a1 b2; do echo \"drwxr-xr-x 4 0 $(date -d \"$(cat $i/created)\" +%s) $i\"; done")
        XCTAssertEqual(listed, expected)
    }

    func testWaitIsInterruptedBySignal() {
        cloud.driver.hold()
        ok("mkdir $MNT/instances/stuck")
        let r = cloud.sh("timeout 1 cat $MNT/instances/stuck/wait; echo rc=$?")
        XCTAssertTrue(r.out.contains("rc=124"), r.out + r.err)
        XCTAssertLessThan(r.seconds, 5)
        XCTAssertTrue(cloud.eventually { self.engine.pendingWaits == 0 }, "the interrupted wait is cancelled")
        XCTAssertEqual(ok("cat $MNT/instances/stuck/status"), "BUILD\n")
    }

    func testWaitEndsWhenInstanceIsDeleted() {
        cloud.driver.hold()
        ok("mkdir $MNT/instances/doomed")
        // The held spawn goes on once the delete is asked for; the build then finds the
        // delete and stops, and the delete removes the instance under the waiter.
        let driver = cloud.driver
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.6) { driver.release() }
        let r = cloud.sh("(sleep 0.3; rmdir $MNT/instances/doomed) & cat $MNT/instances/doomed/wait; echo rc=$?; wait")
        XCTAssertTrue(r.out.contains("rc=1"), r.out)
        XCTAssertTrue(r.err.contains("No such file or directory"), r.err)
    }

    func testRefusalsAndWritableFields() throws {
        let bad = cloud.sh("mkdir \"$MNT/instances/bad name\"")
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.err.contains("Invalid argument"), bad.err)
        XCTAssertEqual(cloud.sh("mkdir $MNT/instances/.hidden").status, 1)
        XCTAssertTrue(events(containing: "refused").contains { $0.contains("EINVAL") })
        // One build at a time, the first one held: db1 waits in scheduling, where its
        // flavor is still the pending build's to change.
        cloud.unmount()
        cloud = try MountedCloud(maxConcurrentJobs: 1)
        try cloud.addImage()
        cloud.driver.hold()
        ok("mkdir $MNT/instances/first && mkdir $MNT/instances/db1")
        XCTAssertEqual(ok("cat $MNT/instances/db1/task_state"), "scheduling\n")
        let ro = cloud.sh("echo ACTIVE > $MNT/instances/db1/status")
        XCTAssertNotEqual(ro.status, 0)
        XCTAssertTrue(ro.err.contains("Read-only file system"), ro.err)
        ok("echo m1.small > $MNT/instances/db1/flavor")
        XCTAssertEqual(ok("cat $MNT/instances/db1/flavor"), "m1.small\n")
        let nf = cloud.sh("echo nope > $MNT/instances/db1/flavor")
        XCTAssertTrue(nf.err.contains("write error: No such file or directory"), nf.err)
        XCTAssertTrue(events(containing: "refused db1").contains { $0.contains("nope") })
        XCTAssertEqual(cloud.sh("mkdir $MNT/instances/db1").status, 1)
        XCTAssertEqual(cloud.sh("rm $MNT/instances/db1/status").status, 1)
    }

    func testStatusChangesAreSeenDespiteCaching() {
        ok("mkdir $MNT/instances/c1")
        // Cache the BUILD size/content, then wait for the engine to change it.
        XCTAssertEqual(ok("stat -c %s $MNT/instances/c1/status; cat $MNT/instances/c1/status"), "6\nBUILD\n")
        ok("cat $MNT/instances/c1/wait")
        XCTAssertTrue(cloud.eventually(2) {
            self.ok("stat -c %s $MNT/instances/c1/status; cat $MNT/instances/c1/status") == "7\nACTIVE\n"
        }, "invalidation makes the new size visible before the attribute timeout")
    }
}
