import CloudTesting
import Foundation
import XCTest

/// Every action from every stable state through `ctl` (and `flavor`/`image` writes), as a
/// shell user sees it: accepted actions reach Nova's next status, the rest are refused
/// with EBUSY and the reason in /events, and a refusal changes nothing.
final class LifecycleMountTests: MountTestCase {
    static let actions = ["start", "stop", "reboot", "reboot hard", "pause", "unpause", "suspend", "resume",
                          "rebuild", "confirm-resize", "revert-resize", "resize"]

    /// What each action does from each status (nil: refused with EBUSY), per Nova's
    /// check_instance_state rules.
    static let expected: [String: [String: String]] = [
        "ACTIVE": ["stop": "SHUTOFF", "reboot": "ACTIVE", "reboot hard": "ACTIVE", "pause": "PAUSED",
                   "suspend": "SUSPENDED", "rebuild": "ACTIVE", "resize": "VERIFY_RESIZE"],
        "SHUTOFF": ["start": "ACTIVE", "reboot hard": "ACTIVE", "rebuild": "SHUTOFF", "resize": "VERIFY_RESIZE"],
        "PAUSED": ["unpause": "ACTIVE", "reboot hard": "ACTIVE"],
        "SUSPENDED": ["resume": "ACTIVE", "reboot hard": "ACTIVE"],
        "VERIFY_RESIZE": ["confirm-resize": "ACTIVE", "revert-resize": "ACTIVE"],
        "ERROR": [:],   // a build that found no host: nothing to act on but rmdir
    ]

    var serial = 0

    /// A fresh instance brought to `status`.
    func instance(in status: String) -> String {
        serial += 1
        let name = "i\(serial)"
        if status == "ERROR" {
            ok("echo m1.xlarge > defaults/flavor && mkdir instances/\(name) && timeout 30 cat instances/\(name)/wait && echo m1.nano > defaults/flavor")
            XCTAssertEqual(read("instances/\(name)/status"), "ERROR")
            return name
        }
        ok("mkdir instances/\(name) && timeout 30 cat instances/\(name)/wait")
        let steps: [String: [String]] = ["SHUTOFF": ["stop"], "PAUSED": ["pause"], "SUSPENDED": ["suspend"],
                                         "VERIFY_RESIZE": ["resize"], "ACTIVE": []]
        for step in steps[status] ?? [] { act(name, step) }
        XCTAssertEqual(read("instances/\(name)/status"), status)
        return name
    }

    @discardableResult
    func act(_ name: String, _ action: String) -> Shell {
        let write = action == "resize" ? "echo m1.tiny > instances/\(name)/flavor" : "echo '\(action)' > instances/\(name)/ctl"
        let r = sh("cd '\(mnt)' && \(write) && timeout 30 cat instances/\(name)/wait")
        return r
    }

    func testEveryActionFromEveryState() {
        ok("head -c 1M /dev/zero > '\(work)/d.raw' && cp '\(work)/d.raw' images/disk && echo m1.nano > defaults/flavor")
        for (status, allowed) in Self.expected.sorted(by: { $0.key < $1.key }) {
            let probe = instance(in: status)
            for action in Self.actions where allowed[action] == nil {
                let before = ["status", "vm_state", "task_state", "power_state", "flavor"].map { read("instances/\(probe)/\($0)") }
                let r = act(probe, action)
                XCTAssertNotEqual(r.status, 0, "\(action) from \(status) should be refused")
                XCTAssertTrue(r.err.contains("Device or resource busy"), "\(action) from \(status): \(r.err)")
                XCTAssertEqual(["status", "vm_state", "task_state", "power_state", "flavor"].map { read("instances/\(probe)/\($0)") },
                               before, "a refused \(action) changed \(probe)")
            }
            let verb = status == "VERIFY_RESIZE" ? "cannot start" : "cannot"
            XCTAssertTrue(read("events").contains("\(verb)") && read("events").contains("while it is \(status)"),
                          "refusals from \(status) are explained in /events")
            for (action, next) in allowed.sorted(by: { $0.key < $1.key }) {
                let name = instance(in: status)
                let r = act(name, action)
                XCTAssertEqual(r.status, 0, "\(action) from \(status): \(r.err)")
                XCTAssertEqual(r.out, next + "\n", "\(action) from \(status): \(read("instances/\(name)/fault"))")
                ok("rmdir instances/\(name)")
            }
            ok("rmdir instances/\(probe)")
        }
        for _ in 0..<100 where !ok("ls instances").isEmpty { usleep(100_000) }
        let left = ok("ls instances")
        XCTAssertEqual(left, "", left.split(separator: "\n").map { n in
            "\(n): " + ["status", "vm_state", "task_state", "fault", "actions"].map { read("instances/\(n)/\($0)") }.joined(separator: " | ")
        }.joined(separator: "\n") + sh("grep -E ' \(left.split(separator: "\n").first ?? "-") ' '\(mnt)/events' | tail -8").out)
        XCTAssertEqual(read("hosts/default/instances"), "")
        XCTAssertEqual(read("hosts/default/ram_mb_used"), "0")
    }

    func testResizeConfirmRevertAndActionsHistory() {
        ok("head -c 1M /dev/zero > '\(work)/d.raw' && cp '\(work)/d.raw' images/disk && echo m1.nano > defaults/flavor")
        ok("mkdir instances/r && timeout 30 cat instances/r/wait")
        let ip = read("instances/r/ip")
        ok("echo m1.tiny > instances/r/flavor")
        XCTAssertEqual(ok("timeout 30 cat instances/r/wait"), "VERIFY_RESIZE\n")
        XCTAssertEqual(read("instances/r/flavor"), "m1.tiny")
        XCTAssertEqual(read("hosts/default/ram_mb_used"), "\(128 + 512)", "both claims are held until confirm")
        ok("echo revert-resize > instances/r/ctl")
        XCTAssertEqual(ok("timeout 30 cat instances/r/wait"), "ACTIVE\n")
        XCTAssertEqual(read("instances/r/flavor"), "m1.nano")
        XCTAssertEqual(read("hosts/default/ram_mb_used"), "128")
        ok("echo m1.tiny > instances/r/flavor && timeout 30 cat instances/r/wait && echo confirm-resize > instances/r/ctl")
        XCTAssertEqual(ok("timeout 30 cat instances/r/wait"), "ACTIVE\n")
        XCTAssertEqual(read("hosts/default/ram_mb_used"), "512")
        XCTAssertEqual(read("instances/r/ip"), ip, "the fixed IP survives resizes")
        ok("echo rebuild > instances/r/ctl")
        XCTAssertEqual(ok("timeout 30 cat instances/r/wait"), "ACTIVE\n")
        XCTAssertEqual(read("instances/r/ip"), ip, "and a rebuild")
        let history = ok("cat instances/r/actions")
        for line in ["build done", "resize(m1.tiny) done", "revert_resize done", "confirm_resize done", "rebuild done"] {
            XCTAssertTrue(history.contains(line), "actions lists \(line): \(history)")
        }
        // /config: live options, validated.
        XCTAssertEqual(read("config/resize_confirm_window"), "0")
        ok("echo 1 > config/resize_confirm_window")
        XCTAssertTrue(fails("echo soon > config/resize_confirm_window").contains("Invalid argument"))
        XCTAssertTrue(fails("echo nuke > config/running_deleted_instance_action").contains("Invalid argument"))
        XCTAssertEqual(read("config/resize_confirm_window"), "1")
    }
}
