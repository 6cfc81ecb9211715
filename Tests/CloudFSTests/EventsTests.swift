import CloudCore
import Foundation
import XCTest

/// `/events`: growing size, reads by offset, `tail -f`, poll.
final class EventsTests: MountTestCase {
    func testSizeGrowsAndTailFollows() throws {
        try cloud.addImage()
        let before = Int(ok("stat -c %s $MNT/events").trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        cloud.engine.events.append(kind: "test.marker", object: "one")
        let after = Int(ok("stat -c %s $MNT/events").trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        XCTAssertGreaterThan(after, before)
        XCTAssertTrue(ok("cat $MNT/events").contains("test.marker one"))
        let r = cloud.sh("""
            timeout 4 tail -n 0 -f $MNT/events > $T/tail.out &
            sleep 1.2
            mkdir $MNT/instances/tailed
            sleep 2
            cat $T/tail.out
            """)
        XCTAssertTrue(r.out.contains("instance.created tailed"), r.out + r.err)
    }

    func testPollWakesAtAppend() throws {
        let fd = open(mnt + "/events", O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 65536)
        while read(fd, &buf, buf.count) > 0 {}
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(poll(&p, 1, 200), 0, "nothing new: not readable")
        let events = cloud.engine.events
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { events.append(kind: "test.wake", object: "x") }
        let start = Date()
        p.revents = 0
        XCTAssertEqual(poll(&p, 1, 5000), 1)
        XCTAssertLessThan(Date().timeIntervalSince(start), 3)
        let n = read(fd, &buf, buf.count)
        XCTAssertTrue(String(decoding: buf[..<max(0, n)], as: UTF8.self).contains("test.wake x"))
    }
}
