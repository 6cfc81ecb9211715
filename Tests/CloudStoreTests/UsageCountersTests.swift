@testable import CloudStore
import CloudCore
import CloudTesting
import Foundation
import GRDB
import XCTest

/// The trigger-kept usage counters (`host_usage`, `project_usage`, migration v17) always
/// equal the sums over `instance` rows they replaced, through inserts, moves, resizes,
/// confirms and deletes, and an upgraded state directory starts with the right counts.
final class UsageCountersTests: XCTestCase {
    var dir = ""

    override func setUp() { dir = TestPaths.makeTempDir("usage") }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// The sums the claims and the quota check used to compute: what the counters must say.
    func sums(_ db: Database, excluding: String? = nil) throws -> (hosts: [String: HostUsage], projects: [String: [Int]]) {
        var hosts: [String: HostUsage] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT host, SUM(v), SUM(r), SUM(d) FROM (
              SELECT host, vcpus AS v, ram_mb AS r, disk_gb AS d FROM instance WHERE host IS NOT NULL AND id IS NOT ?
              UNION ALL
              SELECT old_host, old_vcpus, old_ram_mb, old_disk_gb FROM instance WHERE old_host IS NOT NULL)
            GROUP BY host
            """, arguments: [excluding]) {
            hosts[row[0]] = HostUsage(vcpus: row[1], ramMB: row[2], diskGB: row[3])
        }
        var projects: [String: [Int]] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT project, COUNT(*), SUM(vcpus), SUM(ram_mb) FROM instance GROUP BY project") {
            projects[row[0]] = [row[1], row[2], row[3]]
        }
        return (hosts, projects)
    }

    func assertCountersMatch(_ store: Store, _ step: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try store.db.read { db in
            let want = try sums(db)
            XCTAssertEqual(try Store.claims(db, hosts: nil), want.hosts, "claims after \(step)", file: file, line: line)
            let ids = try String.fetchAll(db, sql: "SELECT id FROM instance")
            for id in ids.prefix(5) {
                XCTAssertEqual(try Store.claims(db, hosts: nil, excluding: id), try sums(db, excluding: id).hosts,
                               "claims excluding \(id) after \(step)", file: file, line: line)
            }
            let some = Array(want.hosts.keys.sorted().prefix(2))
            XCTAssertEqual(try Store.claims(db, hosts: some), want.hosts.filter { some.contains($0.key) },
                           "claims of \(some) after \(step)", file: file, line: line)
            for project in ["p1", "p2", "nobody"] {
                let u = try Store.usage(db, project: project, of: [.instances, .cores, .ramMB])
                XCTAssertEqual([u[.instances]!, u[.cores]!, u[.ramMB]!], want.projects[project] ?? [0, 0, 0],
                               "\(project)'s usage after \(step)", file: file, line: line)
            }
        }
    }

    func record(_ n: Int, host: String?, project: String, vcpus: Int) -> InstanceRecord {
        let image = ImageInfo(name: "img", id: "img-id", status: .active, format: .raw, size: 1, virtualSize: 1, checksum: "",
                              created: Date(), minRamMB: 0, minDiskGB: 0, properties: [:], ownerUID: 0, path: "/x")
        var r = InstanceRecord(id: "i-\(n)", name: "vm\(n)", ownerUID: 0, project: project, image: image,
                               flavor: Flavor(name: "f", vcpus: vcpus, ramMB: 128 * vcpus, diskGB: vcpus), created: Date())
        r.host = host
        return r
    }

    func testCountersFollowEveryChangeOfAnInstanceRow() throws {
        let store = try Store(path: dir + "/db.sqlite")
        try store.db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA foreign_keys = OFF") }
        var rng = SystemRandomNumberGenerator()
        var rows: [InstanceRecord] = []
        for n in 0..<40 {
            let r = record(n, host: [nil, "h1", "h2", "h3"][n % 4], project: n % 3 == 0 ? "p2" : "p1", vcpus: 1 + n % 4)
            try store.db.write { db in try r.insert(db) }
            rows.append(r)
        }
        try assertCountersMatch(store, "inserts")
        for step in 0..<200 {
            var r = rows.randomElement(using: &rng)!
            let what: String
            switch Int.random(in: 0..<6, using: &rng) {
            case 0:
                r.host = ["h1", "h2", "h3", nil].randomElement(using: &rng)!; what = "move to \(r.host ?? "nowhere")"
            case 1:   // a resize: the old claim stays on the old host until confirm
                r.oldHost = r.host; r.oldVcpus = r.vcpus; r.oldRamMb = r.ramMb; r.oldDiskGb = r.diskGb
                r.host = ["h1", "h2", "h3"].randomElement(using: &rng)!
                r.vcpus += 1; r.ramMb += 128; r.diskGb += 2; what = "resize"
            case 2:   // confirm (or revert): the old claim goes
                r.oldHost = nil; r.oldVcpus = 0; r.oldRamMb = 0; r.oldDiskGb = 0; what = "confirm"
            case 3:
                r.project = r.project == "p1" ? "p2" : "p1"; what = "project"
            case 4:
                r.vmState = .stopped; r.fault = "step \(step)"; what = "state only"
            default:
                try store.db.write { db in _ = try InstanceRecord.deleteOne(db, key: r.id) }
                rows.removeAll { $0.id == r.id }
                let fresh = record(1000 + step, host: "h2", project: "p1", vcpus: 2)
                try store.db.write { db in try fresh.insert(db) }
                rows.append(fresh)
                try assertCountersMatch(store, "step \(step): delete \(r.id), insert \(fresh.id)")
                continue
            }
            try store.db.write { db in try r.update(db) }
            rows[rows.firstIndex { $0.id == r.id }!] = r
            try assertCountersMatch(store, "step \(step): \(what) of \(r.id)")
        }
        try store.db.write { db in _ = try InstanceRecord.deleteAll(db) }
        try assertCountersMatch(store, "deleting every row")
        XCTAssertTrue(try store.db.read { db in try Store.claims(db, hosts: nil) }.isEmpty, "hosts with no claim are absent")
    }

    /// A state directory from before v17 starts with counters that equal its rows' sums.
    func testAnUpgradedStateCountsItsInstances() throws {
        let path = dir + "/cloudfs.db"
        do {
            let old = try DatabaseQueue(path: path)
            try Migrations.migrator.migrate(old, upTo: "v16-host-agent")
            try old.write { db in
                for h in ["h1", "h2", "h3"] {
                    try db.execute(sql: "INSERT INTO host (name, uri, created) VALUES (?, ?, 1)", arguments: [h, "test:///\(h)"])
                }
                for n in 0..<12 {
                    var r = record(n, host: ["h1", "h2", nil][n % 3], project: n % 2 == 0 ? "p1" : "p2", vcpus: 1 + n % 3)
                    if n % 4 == 0 { r.oldHost = "h3"; r.oldVcpus = 1; r.oldRamMb = 128; r.oldDiskGb = 1 }
                    try r.insert(db)
                }
            }
        }
        let store = try Store(path: path)
        try assertCountersMatch(store, "the upgrade")
        XCTAssertEqual(try store.usage(of: ["h3"])["h3"], HostUsage(vcpus: 3, ramMB: 384, diskGB: 3), "old claims count on their host")
    }
}
