import CloudCore
import XCTest

final class NamesTests: XCTestCase {
    func testAcceptsSpecNames() {
        for n in ["web1", "a", "Web.1_x-y", String(repeating: "a", count: 63), "1abc"] {
            XCTAssertNil(ObjectName.problem(n), n)
        }
    }

    func testRefusesBadNames() {
        for n in ["", ".hidden", "-x", "a b", "a/b", "é", String(repeating: "a", count: 64), "a\0b", "x*"] {
            XCTAssertNotNil(ObjectName.problem(n), n)
            XCTAssertThrowsError(try ObjectName.validate(n, kind: "instance")) { e in
                XCTAssertEqual((e as? CloudError)?.errno, .invalid)
            }
        }
    }
}

final class StatusTests: XCTestCase {
    func testNovaStateMap() {
        XCTAssertEqual(InstanceStatus.derive(vm: .building, task: .scheduling), .BUILD)
        XCTAssertEqual(InstanceStatus.derive(vm: .active, task: .none), .ACTIVE)
        XCTAssertEqual(InstanceStatus.derive(vm: .active, task: .rebooting), .REBOOT)
        XCTAssertEqual(InstanceStatus.derive(vm: .active, task: .rebootingHard), .HARD_REBOOT)
        XCTAssertEqual(InstanceStatus.derive(vm: .stopped, task: .none), .SHUTOFF)
        XCTAssertEqual(InstanceStatus.derive(vm: .resized, task: .none), .VERIFY_RESIZE)
        XCTAssertEqual(InstanceStatus.derive(vm: .error, task: .none), .ERROR)
        XCTAssertEqual(InstanceStatus.derive(vm: .paused, task: .none), .PAUSED)
        XCTAssertEqual(InstanceStatus.derive(vm: .suspended, task: .none), .SUSPENDED)
        // cloudfs shows DELETING whatever the vm_state (SPEC).
        for vm in VmState.allCases { XCTAssertEqual(InstanceStatus.derive(vm: vm, task: .deleting), .DELETING) }
    }

    func testTaskStateSpelling() {
        XCTAssertEqual(TaskState.blockDeviceMapping.rawValue, "block_device_mapping")
        XCTAssertEqual(TaskState.rebootingHard.rawValue, "rebooting_hard")
    }
}

final class EventLogTests: XCTestCase {
    func testAppendFormatsAndGrows() {
        let log = EventLog(history: ["old line"])
        XCTAssertEqual(log.size, 9)
        let line = log.append(kind: "instance.scheduled", object: "web1", ["host": "node1", "reason": "two words"])
        XCTAssertTrue(line.hasSuffix(" instance.scheduled web1 host=node1 reason=\"two words\""), line)
        XCTAssertEqual(log.lines.count, 2)
        XCTAssertEqual(log.size, 9 + line.utf8.count + 1)
        XCTAssertEqual(String(decoding: log.read(offset: 0, count: 8), as: UTF8.self), "old line")
        XCTAssertEqual(log.read(offset: 10_000, count: 10), [])
    }

    func testWaitersWakeOnceOnAppend() {
        let log = EventLog()
        let woke = expectation(description: "woken")
        log.waitForAppend { woke.fulfill() }
        let cancelled = log.waitForAppend { XCTFail("cancelled waiter was called") }
        log.cancelWait(cancelled)
        log.append(kind: "x", object: "y")
        log.append(kind: "x", object: "z")
        wait(for: [woke], timeout: 1)
    }

    func testSinkSeesEveryLine() {
        let log = EventLog()
        final class Box: @unchecked Sendable { var lines: [String] = [] }
        let box = Box()
        log.addSink { box.lines.append($0) }
        log.appendLine("a\nb")
        XCTAssertEqual(box.lines, ["a b"])
    }

    /// `capture` keeps this thread's lines aside (formatted, not appended, no sink);
    /// `publish` appends them, wakes waiters and skips the sinks (they are persisted);
    /// a capture inside another gives the outer one its lines back.
    func testCaptureKeepsLinesAsideAndPublishShowsThem() {
        let log = EventLog()
        final class Box: @unchecked Sendable { var lines: [String] = [] }
        let sunk = Box()
        log.addSink { sunk.lines.append($0) }
        var inner: [String] = []
        let outer = log.capture {
            log.append(kind: "instance.stop", object: "vm", ["status": "SHUTOFF"])
            inner = log.capture { log.appendLine("inner\nline") }
            log.append(kind: "instance.start", object: "vm")
        }
        XCTAssertEqual(inner, ["inner line"])
        XCTAssertEqual(outer.count, 2)
        XCTAssertTrue(outer[0].hasSuffix(" instance.stop vm status=SHUTOFF"), outer[0])
        XCTAssertEqual(log.size, 0, "captured lines are not appended")
        XCTAssertEqual(sunk.lines, [])
        log.append(kind: "other", object: "x")   // after the capture: appended as usual
        XCTAssertEqual(sunk.lines.count, 1)
        let woke = expectation(description: "woken by publish")
        log.waitForAppend { woke.fulfill() }
        log.publish(outer)
        wait(for: [woke], timeout: 1)
        XCTAssertEqual(log.lines.suffix(2), outer[...])
        XCTAssertEqual(sunk.lines.count, 1, "published lines are already persisted: no sink")
    }

    /// Found by FuzzMountTests: a name whose "\n" is followed by a combining mark (one
    /// Character to String's search) split its refusal over two lines of /events.
    func testNoNameSplitsItsLine() {
        let log = EventLog()
        for object in ["x\n\u{301}y", "x\n\u{0612}2026-11-22T10:00:01.120Z instance.deleted web1", "a\r\nb", "c\rd"] {
            log.append(kind: "request.refused", object: object, ["reason": "r\n\u{301}"])
        }
        XCTAssertEqual(log.read(offset: 0, count: 10_000).filter { $0 == 10 }.count, 4)
        XCTAssertEqual(log.lines.count, 4)
        XCTAssertFalse(log.lines.contains { $0.unicodeScalars.contains("\r") })
    }

    func testTimestampFormat() {
        let s = Timestamp.string(Date(timeIntervalSince1970: 1_795_341_601.12))
        XCTAssertEqual(s, "2026-11-22T10:00:01.120Z")
    }
}

final class ErrorTests: XCTestCase {
    func testWrapKeepsCloudErrorsAndMapsOthersToEIO() {
        struct Other: Error {}
        XCTAssertEqual(CloudError.wrap(CloudError.busy("x")).errno, .busy)
        XCTAssertEqual(CloudError.wrap(Other()).errno, .io)
        XCTAssertEqual(Errno.noSpace.name, "ENOSPC")
    }
}
