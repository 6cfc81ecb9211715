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
