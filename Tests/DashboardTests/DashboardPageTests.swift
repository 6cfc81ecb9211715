import CloudCore
@testable import Dashboard
import XCTest

/// The dashboard's pure parts: rows from info.json with Nova's preconditions, the event
/// line parser that finds refusal reasons, form decoding, launch files, and rendering.
final class DashboardPageTests: XCTestCase {
    func info(_ status: String, vm: String, task: String = "none", host: String = "node1", locked: String = "",
              fault: String = "", created: String = "2026-12-01T10:00:00.000Z") -> [UInt8] {
        let obj: [String: Any] = ["name": "web1", "image": "tiny", "flavor": "m1.nano", "key_name": "me", "host": host,
                                  "ips": ["10.0.0.2", "10.1.0.5"], "status": status, "vm_state": vm, "task_state": task,
                                  "power_state": "running", "locked": locked, "fault": fault, "created": created]
        return Array(try! JSONSerialization.data(withJSONObject: obj))
    }

    func testRowOffersOnlyWhatNovaAllows() throws {
        let now = ISO8601DateFormatter().date(from: "2026-12-01T10:05:30Z")!
        let active = try XCTUnwrap(InstanceRow(json: info("ACTIVE", vm: "active"), flavors: ["m1.nano", "m1.small"], now: now))
        XCTAssertEqual(active.actions.map(\.verb), ["stop", "reboot", "reboot hard", "pause", "suspend", "rebuild", "migrate", "live-migrate", "lock"])
        XCTAssertEqual(active.ip, "10.0.0.2, 10.1.0.5")
        XCTAssertEqual(active.age, "5m")
        XCTAssertTrue(active.canResize)
        XCTAssertEqual(active.flavors, ["m1.small"], "resize offers the other flavors")
        XCTAssertFalse(active.transitional)
        XCTAssertNil(active.fault)

        let stopped = try XCTUnwrap(InstanceRow(json: info("SHUTOFF", vm: "stopped", locked: "admin")))
        XCTAssertEqual(stopped.actions.map(\.verb), ["start", "reboot hard", "rebuild", "unlock"])
        XCTAssertEqual(stopped.locked, "admin")

        let building = try XCTUnwrap(InstanceRow(json: info("BUILD", vm: "building", task: "spawning", host: "")))
        XCTAssertEqual(building.actions.map(\.verb), ["lock"], "nothing but lock while a task runs")
        XCTAssertFalse(building.canResize)
        XCTAssertTrue(building.transitional)

        let error = try XCTUnwrap(InstanceRow(json: info("ERROR", vm: "error", host: "", fault: "No valid host")))
        XCTAssertEqual(error.fault, "No valid host")
        XCTAssertEqual(error.actions.map(\.verb), ["lock"], "an instance that never got a host has no power actions")
        XCTAssertNil(InstanceRow(json: Array("not json".utf8)))
    }

    func testOfferedMatchesThePreconditionsTable() {
        for vm in VmState.allCases {
            let verbs = InstanceAction.offered(vm: vm, task: .none, hasHost: true, locked: false)
            for p in PowerAction.allCases {
                XCTAssertEqual(verbs.contains(p.rawValue), p.allowedFrom.contains(vm), "\(p) in \(vm)")
            }
            XCTAssertEqual(verbs.contains("rebuild"), InstanceAction.rebuildFrom.contains(vm))
        }
        XCTAssertEqual(InstanceAction.offered(vm: .resized, task: .none, hasHost: true, locked: true),
                       ["confirm-resize", "revert-resize", "unlock"])
    }

    func testEventLinesKeepQuotedReasons() throws {
        let e = try XCTUnwrap(EventLine(#"2026-12-01T19:07:20.895Z instance.refused web1 errno=EBUSY pid=3053 uid=0 reason="cannot pause web1 while it is SHUTOFF" project=default"#))
        XCTAssertEqual(e.kind, "instance.refused")
        XCTAssertEqual(e.object, "web1")
        XCTAssertEqual(e.instance, "web1")
        XCTAssertEqual(e.field("reason"), "cannot pause web1 while it is SHUTOFF")
        XCTAssertEqual(e.field("project"), "default")
        XCTAssertEqual(e.field("errno"), "EBUSY")
        XCTAssertNil(EventLine("too short"))
    }

    func testFormsDecodeLikeBrowsersEncode() {
        let f = FormBody("name=web+1&user_data=%23cloud-config%0D%0Aruncmd%3A&security_groups=default&security_groups=ssh&empty=")
        XCTAssertEqual(f["name"], "web 1")
        XCTAssertEqual(f.text("user_data"), "#cloud-config\nruncmd:")
        XCTAssertEqual(f.all("security_groups"), ["default", "ssh"])
        XCTAssertEqual(f["empty"], "")
        XCTAssertEqual(f["missing"], "")
    }

    func testLaunchFilesNameCopiesAndLeaveDefaultsOut() throws {
        let one = try LaunchForm.launchFiles(FormBody("name=web&count=1&image=tiny&flavor=&security_groups=ssh"))
        XCTAssertEqual(one.map(\.name), ["web"])
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(one[0].json.utf8)) as? [String: Any])
        XCTAssertEqual(obj["image"] as? String, "tiny")
        XCTAssertNil(obj["flavor"], "an empty field takes /defaults when the file is closed")
        XCTAssertEqual(obj["security_groups"] as? [String], ["ssh"])
        XCTAssertEqual(try LaunchForm.launchFiles(FormBody("name=web&count=3")).map(\.name), ["web-1", "web-2", "web-3"])
        XCTAssertThrowsError(try LaunchForm.launchFiles(FormBody("name=web&count=0")))
        XCTAssertThrowsError(try LaunchForm.launchFiles(FormBody("count=1"))) { e in
            XCTAssertEqual((e as? TreeError)?.errno, EINVAL)
        }
    }

    func testRowsRenderEscapedWithTheirActions() async throws {
        let views = try Views(mount: "/cloud", csrf: "tok")
        let row = try XCTUnwrap(InstanceRow(json: info("ERROR", vm: "error", fault: "<script>alert(1)</script>")))
        let html = try await Collect.text(of: views.row(row).body)
        XCTAssertTrue(html.contains(#"id="row-web1""#))
        XCTAssertTrue(html.contains(#"data-status="ERROR""#))
        XCTAssertFalse(html.contains("<script>alert"), "values are HTML-escaped")
        XCTAssertTrue(html.contains("csrf=tok"), "every form carries the CSRF token")
        XCTAssertTrue(html.contains(#"data-verb="stop""#) && !html.contains(#"data-verb="start""#))
    }

    func testTokensCompareWholly() {
        let t = AccessTokens()
        XCTAssertEqual(t.access.count, 64)
        XCTAssertNotEqual(t.access, t.csrf)
        XCTAssertTrue(AccessTokens.same(t.access, t.access))
        XCTAssertFalse(AccessTokens.same(t.access, String(t.access.dropLast())))
        XCTAssertFalse(AccessTokens.same(t.access, t.csrf))
    }

    func testErrorsNameTheErrnoAndTheReason() {
        var e = TreeError(errno: EBUSY, operation: "echo >", path: "instances/web1/ctl")
        XCTAssertEqual(e.description, "EBUSY: echo > instances/web1/ctl: Device or resource busy")
        e.reason = "cannot pause web1 while it is SHUTOFF"
        XCTAssertEqual(e.description, "EBUSY: cannot pause web1 while it is SHUTOFF")
        XCTAssertFalse(MountedTree.isCloudfsMount("/tmp"))
    }
}
