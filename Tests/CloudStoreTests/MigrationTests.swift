import CloudCore
import CloudTesting
@testable import CloudStore
import Foundation
import GRDB
import XCTest

/// Upgrades keep what is on disk: task rows written before tasks were typed (schema v9:
/// a `kind` and a verb in `argument`) read back as the same typed tasks.
final class MigrationTests: XCTestCase {
    var dir = ""

    override func setUp() { dir = TestPaths.makeTempDir("migrate") }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testV9TaskRowsBecomeTypedTasks() throws {
        let path = dir + "/cloudfs.db"
        do {
            let old = try DatabaseQueue(path: path)
            try Migrations.migrator.migrate(old, upTo: "v9-network-project")
            try old.write { db in
                let rows: [(String, String, String)] = [
                    ("build", "", "running"), ("action", "reboot hard", "queued"), ("migrate", "node2", "done"),
                    ("migrate", "", "done"), ("resize", "m1.small", "failed"), ("confirm_resize", "", "done"),
                    ("delete", "", "queued"), ("teleport", "mars", "queued"),
                ]
                for (kind, argument, state) in rows {
                    try db.execute(sql: """
                        INSERT INTO task (instance_id, instance_name, kind, argument, state, created, updated)
                        VALUES ('i-1', 'web1', ?, ?, ?, 1, 1)
                        """, arguments: [kind, argument, state])
                }
            }
        }
        let store = try Store(path: path)
        let tasks = try store.tasks(instanceID: "i-1").reversed().map(\.command)
        XCTAssertEqual(tasks, [.build, .power(.rebootHard), .migrate(host: "node2"), .migrate(host: nil),
                               .resize(flavor: "m1.small"), .confirmResize, .delete],
                       "every row converted; the kind cloudfs never wrote is dropped")
        XCTAssertEqual(try store.openTasks().map(\.command), [.build, .power(.rebootHard), .delete])
        XCTAssertEqual(try store.tasks(instanceID: "i-1").first?.kind, "delete")
        let columns = try DatabaseQueue(path: path).read { db in try db.columns(in: "task").map(\.name) }
        XCTAssertFalse(columns.contains("argument"), "the verb column is gone: \(columns)")
    }

    /// A single-user state directory (v10) becomes the `default` project, owned by root:
    /// every object moves in, images stay visible to all, the old floating IP quota setting
    /// becomes the project's limit, and nothing else is limited there.
    func testV10StateMovesIntoTheDefaultProjectOwnedByRoot() throws {
        let path = dir + "/cloudfs.db"
        do {
            let old = try DatabaseQueue(path: path)
            try Migrations.migrator.migrate(old, upTo: "v10-typed-tasks")
            try old.write { db in
                try db.execute(sql: """
                    INSERT INTO image (id, name, status, format, size, virtual_size, checksum, created, min_ram_mb, min_disk_gb, owner_uid, path)
                        VALUES ('img', 'tiny', 'active', 'raw', 1, 1, '', 1, 0, 0, 1000, '/x');
                    INSERT INTO instance (id, name, owner_uid, project, vm_state, task_state, power_state, fault, image_id, image_name,
                                          flavor, vcpus, ram_mb, disk_gb, created, domain_xml, delete_requested, locked)
                        VALUES ('i-1', 'web1', 1000, 'alice', 'active', 'none', 'running', '', 'img', 'tiny', 'm1.nano', 1, 128, 1, 1, '', 0, 1);
                    INSERT INTO server_group (name, policy, owner_uid) VALUES ('g', 'affinity', 1000);
                    INSERT INTO security_group (name, rules, owner_uid) VALUES ('web', '', 1000);
                    INSERT INTO setting (key, value) VALUES ('quota.floating_ips', '3');
                    """)
            }
        }
        let store = try Store(path: path)
        XCTAssertEqual(try store.projects().map(\.name), ["default"])
        let i = try XCTUnwrap(try store.instances().first)
        XCTAssertEqual([i.project, String(i.ownerUid)], ["default", "0"])
        XCTAssertEqual(i.lockedBy, "admin", "an old lock binds members, as an admin's does")
        let img = try XCTUnwrap(try store.imageRecord(id: "img"))
        XCTAssertEqual([img.project, img.visibility, String(img.ownerUid)], ["default", "public", "0"])
        XCTAssertEqual(try store.groups().map(\.project), ["default"])
        XCTAssertEqual(try store.securityGroups().first { $0.name == "web" }?.project, "default")
        let limits = Dictionary(uniqueKeysWithValues: try store.quotas().map { ($0.resource, $0.hardLimit) })
        XCTAssertEqual(limits["floating_ips"], 3)
        XCTAssertEqual(limits["instances"], -1)
        XCTAssertEqual(limits.count, QuotaResource.allCases.count)
        XCTAssertNil(try store.setting(.cloudID))
        XCTAssertEqual(try store.usage(project: "default")[.instances], 1)
    }

    func testDefaultsFollowTheirObjectInTheSameTransaction() throws {
        let store = try Store(path: dir + "/db.sqlite")
        try store.seedFlavorsOnce(Flavor.seed)
        try store.setSetting(.defaultValue(.flavor), "m1.small")
        XCTAssertFalse(try store.deleteFlavor("m1.tiny"), "another flavor's default stays")
        XCTAssertTrue(try store.deleteFlavor("m1.small"))
        XCTAssertNil(try store.setting(.defaultValue(.flavor)))
        try store.insertGroup(ServerGroupRecord(name: "g", policy: "affinity", ownerUID: 0))
        try store.setSetting(.defaultValue(.group), "g")
        XCTAssertTrue(try store.deleteGroup("g"))
        XCTAssertNil(try store.setting(.defaultValue(.group)))
        let rec = ImageRecord(id: "img", name: "old", status: .active, format: .raw, created: Date(), ownerUID: 0, path: "/x")
        try store.insertImage(rec)
        try store.setSetting(.defaultValue(.image), "old")
        let inst = InstanceRecord(id: "i", name: "vm", ownerUID: 0, project: "p", image: rec.info(properties: [:]),
                                  flavor: Flavor.seed[0], created: Date())
        try store.insertInstance(inst)
        try store.renameImage(id: "img", from: "old", to: "new")
        XCTAssertEqual(try store.setting(.defaultValue(.image)), "new")
        XCTAssertEqual(try store.instance(id: "i")?.imageName, "new", "the instance's copy of the name is renamed on disk too")
    }
}
