import CloudTesting
import Foundation
import XCTest

/// Several people on one cloud (`--allow-other`), with real local accounts this test
/// makes (`useradd`) and removes: the admin registers them through /users and /projects
/// and each sees and may do what their role in the object's project allows. A matrix of
/// {admin, member, reader, member of another project, unregistered} × {ls, stat, cat,
/// write, mkdir, rmdir, ctl} over every collection; every cell has an expected result.
final class ProjectsMountTests: MountTestCase {
    /// The accounts, by role.
    var accounts: [String: String] = [:]
    let roles = ["admin", "member", "reader", "other", "stranger"]

    override func mount(extra: [String] = [], env: String = "") throws {
        try super.mount(extra: extra + ["--allow-other"], env: env)
    }

    override func setUpWithError() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
              FileManager.default.isExecutableFile(atPath: "/usr/sbin/useradd") else {
            throw XCTSkip("needs root, setpriv and useradd")
        }
        let tag = String(getpid() % 100_000)
        for role in ["member", "reader", "other", "stranger"] {
            let name = "cfs\(role.prefix(3))\(tag)"
            let r = sh("useradd --no-create-home --shell /usr/sbin/nologin \(name)")
            guard r.status == 0 else { throw XCTSkip("cannot add a local account: \(r.err)") }
            accounts[role] = name
        }
        accounts["admin"] = "root"
        try super.setUpWithError()
        sh("chmod 755 '\(work)'")   // the other users reach the mount point
    }

    override func tearDown() {
        super.tearDown()
        for (role, name) in accounts where role != "admin" { sh("userdel \(name)") }
    }

    /// Runs `script` in the mount as `role` (root for the admin).
    func run(_ role: String, _ script: String) -> Shell {
        let name = accounts[role] ?? "root"
        let prefix = role == "admin" ? "" : "setpriv --reuid=\(name) --regid=\(name) --clear-groups "
        return sh("cd '\(mnt)' && \(prefix)bash -c \(quote(script))", timeout: 60)
    }

    func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// What a cell came to: ok, denied (EACCES), absent (ENOENT) or the message.
    func outcome(_ r: Shell) -> String {
        if r.status == 0 { return "ok" }
        if r.err.contains("Permission denied") { return "denied" }
        if r.err.contains("No such file") || r.err.contains("nonexistent") || r.err.contains("cannot access") { return "absent" }
        if r.err.contains("Disk quota exceeded") { return "quota" }
        return "failed: \(r.err.trimmingCharacters(in: .whitespacesAndNewlines))"
    }

    /// Set up as the admin, through the tree only.
    func makeTheCloud() {
        let (member, reader, other) = (accounts["member"]!, accounts["reader"]!, accounts["other"]!)
        ok("mkdir users/\(member) users/\(reader) users/\(other)")
        ok("mkdir projects/p1 projects/p2")
        ok("printf '\(member) member\\n\(reader) reader\\n' > projects/p1/members")
        ok("echo '\(other) member' > projects/p2/members")
        ok("head -c 1M /dev/zero > '\(work)/d.raw' && cp '\(work)/d.raw' images/pub && echo public > images.d/pub/visibility")
        ok("echo pub > defaults/image && echo m1.nano > defaults/flavor")
        ok("echo 10.99.0.0/24 > networks/default/floating_range")
        XCTAssertEqual(run("member", "mkdir instances/vm1 && cat instances/vm1/wait").out, "ACTIVE\n")
        XCTAssertEqual(run("member", "mkdir groups/g1 security-groups/sg1 floating-ips/10.99.0.1 volumes/v1").status, 0)
    }

    /// One collection's cells: the commands for each operation (`{R}` is the role's name,
    /// for the objects a role makes) and the expected outcome per role, in `roles` order.
    struct Row {
        var collection: String
        var cells: [(op: String, command: String, expected: [String])]
    }

    var rows: [Row] {
        let member = accounts["member"]!
        let ok = "ok", no = "denied", gone = "absent"
        return [
            Row(collection: "instances", cells: [
                ("ls", "ls instances | grep -qx vm1", [ok, ok, ok, "failed: ", no]),
                ("stat", "stat instances/vm1 >/dev/null", [ok, ok, ok, gone, no]),
                ("cat", "cat instances/vm1/status", [ok, ok, ok, gone, no]),
                ("write", "echo default > instances/vm1/security_groups", [ok, ok, no, gone, no]),
                ("mkdir", "mkdir instances/new-{R} && cat instances/new-{R}/wait", [ok, ok, no, ok, no]),
                ("rmdir", "rmdir instances/new-{R} 2>/dev/null || rmdir instances/vm1", [ok, ok, no, ok, no]),
                ("ctl", "echo lock > instances/vm1/ctl && echo unlock > instances/vm1/ctl", [ok, ok, no, gone, no]),
            ]),
            Row(collection: "images", cells: [
                ("ls", "ls images | grep -qx pub", [ok, ok, ok, ok, no]),
                ("stat", "stat images/pub >/dev/null", [ok, ok, ok, ok, no]),
                ("cat", "cmp -s images/pub /dev/null || true; head -c 1 images/pub >/dev/null", [ok, ok, ok, ok, no]),
                ("write", "echo v > images.d/pub/properties/note", [ok, no, no, no, no]),
                ("mkdir", "head -c 4096 /dev/zero > /tmp/.cfs-{R} ; cp /tmp/.cfs-{R} images/img-{R}; s=$?; rm -f /tmp/.cfs-{R}; exit $s", [ok, ok, no, ok, no]),
                ("rmdir", "rm images/img-{R} 2>/dev/null || rm images/pub", [ok, ok, no, ok, no]),
            ]),
            Row(collection: "flavors", cells: [
                ("ls", "ls flavors | grep -qx m1.nano", [ok, ok, ok, ok, no]),
                ("cat", "cat flavors/m1.nano/vcpus", [ok, ok, ok, ok, no]),
                ("write", "echo 1 > flavors/m1.nano/vcpus", [ok, no, no, no, no]),
                ("mkdir", "mkdir flavors/f-{R}", [ok, no, no, no, no]),
                ("rmdir", "rmdir flavors/f-{R} 2>/dev/null || rmdir flavors/m1.xlarge", [ok, no, no, no, no]),
            ]),
            Row(collection: "hosts", cells: [
                ("ls", "ls hosts | grep -qx default", [ok, no, no, no, no]),
                ("cat", "cat hosts/default/state", [ok, no, no, no, no]),
                ("ctl", "echo enable > hosts/default/ctl", [ok, no, no, no, no]),
            ]),
            Row(collection: "groups", cells: [
                ("ls", "ls groups | grep -qx g1", [ok, ok, ok, "failed: ", no]),
                ("cat", "cat groups/g1/policy", [ok, ok, ok, gone, no]),
                ("write", "echo anti-affinity > groups/g1/policy", [ok, ok, no, gone, no]),
                ("mkdir", "mkdir groups/g-{R}", [ok, ok, no, ok, no]),
                ("rmdir", "rmdir groups/g-{R} 2>/dev/null || rmdir groups/g1", [ok, ok, no, ok, no]),
            ]),
            Row(collection: "floating-ips", cells: [
                ("ls", "ls floating-ips | grep -qx 10.99.0.1", [ok, ok, ok, "failed: ", no]),
                ("cat", "cat floating-ips/10.99.0.1/pool", [ok, ok, ok, gone, no]),
                ("write", "echo -n > floating-ips/10.99.0.1/instance", [ok, ok, no, gone, no]),
            ]),
            Row(collection: "security-groups", cells: [
                ("ls", "ls security-groups | grep -qx sg1", [ok, ok, ok, "failed: ", no]),
                ("cat", "cat security-groups/sg1/rules", [ok, ok, ok, gone, no]),
                ("write", "echo 'tcp 22 0.0.0.0/0' > security-groups/sg1/rules", [ok, ok, no, gone, no]),
                ("write-default", "echo 'tcp 22 0.0.0.0/0' > security-groups/default/rules", [ok, no, no, no, no]),
            ]),
            Row(collection: "volumes", cells: [
                ("ls", "ls volumes | grep -qx v1", [ok, ok, ok, "failed: ", no]),
                ("cat", "cat volumes/v1/status volumes/v1/info.json", [ok, ok, ok, gone, no]),
                ("write", "echo 2 > volumes/v1/size_gb", [ok, ok, no, gone, no]),
                ("mkdir", "mkdir volumes/v-{R}", [ok, ok, no, ok, no]),
                ("snapshot", "mkdir volumes/v1/snapshots/s-{R} && cat volumes/v1/snapshots/s-{R}/status", [ok, ok, no, gone, no]),
                ("rmdir", "rmdir volumes/v-{R} 2>/dev/null || rmdir volumes/v1", [ok, ok, no, ok, no]),
            ]),
            Row(collection: "networks", cells: [
                ("cat", "cat networks/default/cidr", [ok, ok, ok, ok, no]),
                ("write", "echo 10.0.0.1 > networks/default/dns", [ok, no, no, no, no]),
                ("mkdir", "mkdir networks/n-{R}", [ok, no, no, no, no]),
            ]),
            Row(collection: "defaults", cells: [
                ("cat", "cat defaults/flavor", [ok, ok, ok, ok, no]),
                ("write", "echo m1.nano > defaults/flavor", [ok, no, no, no, no]),
            ]),
            Row(collection: "config", cells: [
                ("cat", "cat config/shutdown_timeout", [ok, no, no, no, no]),
                ("write", "echo 30 > config/shutdown_timeout", [ok, no, no, no, no]),
            ]),
            Row(collection: "scheduler", cells: [
                ("cat", "cat scheduler/max_attempts", [ok, no, no, no, no]),
                ("write", "echo 3 > scheduler/max_attempts", [ok, no, no, no, no]),
            ]),
            Row(collection: "users", cells: [
                ("ls", "ls users | grep -qx \(member)", [ok, ok, "failed: ", "failed: ", no]),
                ("cat", "cat users/\(member)/projects", [ok, ok, gone, gone, no]),
                ("write", "echo p1 > users/\(member)/project", [ok, ok, gone, gone, no]),
                ("mkdir", "mkdir users/nosuchaccount-{R}", ["failed: ", no, no, no, no]),
            ]),
            Row(collection: "projects", cells: [
                ("ls", "ls projects | grep -qx p1", [ok, ok, ok, "failed: ", no]),
                ("cat", "cat projects/p1/members projects/p1/usage/instances projects/p1/quota/instances", [ok, ok, ok, gone, no]),
                // The copy goes each time: a leftover of another run's account would deny the next one.
                ("write", "m=$(mktemp) && cat projects/p1/members > $m && cat $m > projects/p1/members; s=$?; rm -f $m; exit $s",
                 [ok, no, no, gone, no]),
                ("quota", "echo 10 > projects/p1/quota/instances", [ok, no, no, gone, no]),
                ("mkdir", "mkdir projects/p-{R}", [ok, no, no, no, no]),
                ("rmdir", "rmdir projects/p-{R} 2>/dev/null || rmdir projects/p1", [ok, no, no, gone, no]),
            ]),
            Row(collection: "events", cells: [
                ("cat", "grep -q 'instance.created vm1' events", [ok, ok, ok, "failed: ", no]),
            ]),
        ]
    }

    func testEveryRoleAgainstEveryCollection() throws {
        makeTheCloud()
        var mismatches: [String] = []
        var checked = 0
        for row in rows {
            for cell in row.cells {
                for (i, role) in roles.enumerated() {
                    let command = cell.command.replacingOccurrences(of: "{R}", with: role)
                    let got = outcome(run(role, command))
                    let want = cell.expected[i]
                    checked += 1
                    if !(got == want || (want.hasPrefix("failed: ") && got.hasPrefix(want))) {
                        mismatches.append("\(row.collection) \(cell.op) as \(role): expected \(want), got \(got)")
                    }
                }
            }
        }
        XCTAssertEqual(mismatches, [], "\(mismatches.count) of \(checked) cells differ:\n" + mismatches.joined(separator: "\n"))
        XCTAssertGreaterThan(checked, 250)
    }

    /// `ls -l` tells the truth: the owner, the project's group, the caller's modes.
    func testLsShowsOwnerProjectGroupAndTheCallersModes() throws {
        makeTheCloud()
        let gid = read("projects/p1/gid")
        let uid = sh("id -u \(accounts["member"]!)").out.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(run("member", "stat -c '%u %g %a' instances/vm1 instances/vm1/security_groups").out,
                       "\(uid) \(gid) 555\n\(uid) \(gid) 666\n")
        XCTAssertEqual(run("reader", "stat -c '%u %g %a' instances/vm1/security_groups instances").out,
                       "\(uid) \(gid) 444\n0 0 555\n")
        XCTAssertEqual(read("projects/default/gid"), "200000")
        XCTAssertEqual(gid, "200001", "project gids count up from 200000 in creation order")
    }

    /// No cached-permission leak: two users alternating on the same paths in quick
    /// succession each get their own answer every time, never the other's.
    func testAlternatingUsersNeverInheritEachOthersAccess() throws {
        makeTheCloud()
        var leaks: [String] = []
        for i in 0..<40 {
            let m = run("member", "cat instances/vm1/status && stat -c %a instances/vm1/security_groups")
            let o = run("other", "cat instances/vm1/status")
            let s = run("stranger", "stat instances/vm1")
            if m.out != "ACTIVE\n666\n" { leaks.append("round \(i): member got '\(m.out)' \(m.err)") }
            if o.status == 0 { leaks.append("round \(i): the other project read vm1: \(o.out)") }
            if s.status == 0 { leaks.append("round \(i): the unregistered user saw vm1") }
        }
        XCTAssertEqual(leaks, [])
    }

    /// Quotas through the tree: 20 concurrent mkdirs in a project of 5 give exactly 5.
    func testConcurrentMkdirsMeetTheProjectQuota() throws {
        makeTheCloud()
        ok("echo 5 > projects/p2/quota/instances")
        let script = (0..<20).map { "(mkdir instances/q\($0) 2>>/tmp/.cfs-q-err || true) &" }.joined(separator: " ") + " wait"
        _ = run("other", "rm -f /tmp/.cfs-q-err; " + script)
        XCTAssertEqual(run("other", "ls instances | grep -c '^q'").out, "5\n")
        XCTAssertEqual(run("other", "grep -c 'Disk quota exceeded' /tmp/.cfs-q-err").out, "15\n")
        XCTAssertEqual(read("projects/p2/usage/instances"), "5")
        XCTAssertEqual(run("other", "grep -c 'Quota exceeded for instances: requested 1, used 5 of 5' events").out, "15\n")
        sh("rm -f /tmp/.cfs-q-err")
    }
}

/// `cloudfs dashboard` acts with the uid of whoever runs it: each user's dashboard shows
/// what the tree shows that user, and refuses what the tree refuses them.
extension ProjectsMountTests {

    /// Starts the dashboard as `role`; its base URL and a cookie jar that holds its token.
    func dashboard(as role: String) throws -> (base: String, jar: String) {
        let out = "\(work)/dash-\(role).out", jar = "\(work)/jar-\(role)"
        let name = accounts[role] ?? "root"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = ["--reuid=\(name)", "--regid=\(name)", "--clear-groups", cloudfs, "dashboard", mnt, "--listen", "127.0.0.1:0"]
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: out)
        p.standardError = p.standardOutput
        p.standardInput = FileHandle.nullDevice
        try p.run()
        addTeardownBlock { p.terminate(); p.waitUntilExit() }   // before the unmount
        var url = ""
        for _ in 0..<200 where url.isEmpty {
            usleep(50_000)
            let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            if let r = text.range(of: #"http://\S+"#, options: .regularExpression) { url = String(text[r]) }
        }
        guard let cut = url.range(of: "/?token=") else { throw XCTSkip("no dashboard URL for \(role)") }
        XCTAssertEqual(sh("curl -s -c '\(jar)' -o /dev/null -w '%{http_code}' '\(url)'").out, "303")
        return (String(url[..<cut.lowerBound]), jar)
    }

    func testDashboardShowsEachUserTheirOwnTree() throws {
        makeTheCloud()
        let member = try dashboard(as: "member"), other = try dashboard(as: "other")
        func page(_ d: (base: String, jar: String), _ path: String) -> String {
            sh("curl -s -b '\(d.jar)' '\(d.base)\(path)'").out
        }
        XCTAssertTrue(page(member, "/instances").contains(#"id="row-vm1""#), "the member sees the project's instance")
        XCTAssertFalse(page(other, "/instances").contains("vm1"), "another project's instance is not there")
        XCTAssertTrue(page(other, "/instances/vm1").contains("ENOENT"))
        // The overview shows the projects the user may read; /hosts is the admin's.
        XCTAssertTrue(page(member, "/").contains(#"data-project="p1""#))
        XCTAssertFalse(page(member, "/").contains(#"data-project="p2""#))
        XCTAssertTrue(page(member, "/").contains("EACCES"), "hosts: the tree's refusal, shown")
        // A button another project's user cannot use: the tree's answer, not the dashboard's.
        let csrf = page(other, "/instances").components(separatedBy: #"name="csrf" content=""#).dropFirst().first?.prefix(64) ?? ""
        let r = sh("curl -s -b '\(other.jar)' -o /dev/null -w '%{redirect_url}' -d verb=stop '\(other.base)/instances/vm1/action?csrf=\(csrf)'")
        XCTAssertTrue(r.out.contains("ENOENT"), r.out)
        XCTAssertEqual(read("instances/vm1/status"), "ACTIVE")
        // The member's stop goes through, as the member.
        let mcsrf = page(member, "/instances").components(separatedBy: #"name="csrf" content=""#).dropFirst().first?.prefix(64) ?? ""
        let s = sh("curl -s -b '\(member.jar)' -o /dev/null -w '%{redirect_url}' -d verb=stop '\(member.base)/instances/vm1/action?csrf=\(mcsrf)'")
        XCTAssertTrue(s.out.contains("level=ok"), s.out)
        XCTAssertTrue((0..<100).contains { _ in usleep(100_000); return read("instances/vm1/status") == "SHUTOFF" })
        XCTAssertTrue(sh("tail -n 30 '\(mnt)/events'").out.contains("uid=\(sh("id -u \(accounts["member"]!)").out.trimmingCharacters(in: .whitespacesAndNewlines))"),
                      "the action was the member's")
    }
}
