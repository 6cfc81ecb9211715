@testable import CloudStore
import CloudCore
import CloudTesting
import Foundation
import GRDB
import XCTest

/// `InstanceRecord`'s hand-written row coding (InstanceRecord+Row.swift) against the table
/// and against GRDB's Codable coding it replaced.
final class RowCodingTests: XCTestCase {
    var dir = ""

    override func setUp() { dir = TestPaths.makeTempDir("rows") }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Every field set to something other than its default.
    func fullRecord() -> InstanceRecord {
        let image = ImageInfo(name: "img", id: "img-id", status: .active, format: .raw, size: 1, virtualSize: 1, checksum: "",
                              created: Date(), minRamMB: 0, minDiskGB: 0, properties: [:], ownerUID: 0, path: "/x")
        var r = InstanceRecord(id: "i-1", name: "web1", ownerUID: 1001, project: "p", image: image,
                               flavor: Flavor(name: "f", vcpus: 2, ramMB: 256, diskGB: 3), created: Date(timeIntervalSince1970: 1234.5))
        r.vmState = .resized; r.taskState = .resizeFinish; r.powerState = .running; r.fault = "oops"; r.host = "h1"
        r.domainXml = "<domain/>"; r.deleteRequested = true; r.groupName = "g"; r.locked = true; r.lockedBy = "admin"
        r.availabilityZone = "az"; r.oldFlavor = "small"; r.oldVcpus = 1; r.oldRamMb = 128; r.oldDiskGb = 1
        r.oldHost = "h0"; r.oldVmState = .stopped; r.resizedAt = 99.5; r.securityGroups = "default\nweb"
        r.keyName = "me"; r.publicKey = "ssh-ed25519 AAAA"; r.userData = "#cloud-config\n"; r.metadata = #"{"a":"b"}"#
        r.requestedNetwork = "net"; r.sshPort = 2222; r.configDrive = false
        return r
    }

    func testEveryColumnOfTheTableIsWrittenAndReadBack() throws {
        let store = try Store(path: dir + "/db.sqlite")
        let r = fullRecord()
        let columns = try store.db.read { db in try db.columns(in: "instance").map(\.name) }
        XCTAssertEqual(Set(try r.databaseDictionary.keys), Set(columns), "encode(to:) writes exactly the table's columns")
        // The row alone: its host, project and group rows are not what is tested here.
        try store.db.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA foreign_keys = OFF")
            try r.insertRow(db)   // the store's cached INSERT
            var other = r
            other.id = "i-2"; other.name = "web2"; other.sshPort = 2223
            try other.insert(db)   // GRDB's
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        let back = try store.db.read { db in try InstanceRecord.fetchOne(db, key: "i-1") }
        XCTAssertEqual(back, r)
        let rows = try store.db.read { db in try Row.fetchAll(db, sql: "SELECT * FROM instance ORDER BY id") }
        for column in columns where !["id", "name", "ssh_port"].contains(column) {
            XCTAssertEqual(rows[0][column] as DatabaseValue, rows[1][column] as DatabaseValue, "insertRow and GRDB's insert agree on \(column)")
        }
    }

    /// Inserts rows alone (their host, project and group rows are not what is tested here)
    /// and leaves foreign keys off on the writer for the store calls that follow.
    func insertAlone(_ store: Store, _ rows: [InstanceRecord]) throws {
        try store.db.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA foreign_keys = OFF")
            for r in rows { try r.insert(db) }
        }
    }

    /// The store's own cached statements (rows read by position, every column written)
    /// agree with GRDB's record coding.
    func testCachedStatementsReadAndWriteEveryColumn() throws {
        let store = try Store(path: dir + "/db.sqlite")
        var r = fullRecord()
        r.taskState = .none
        r.deleteRequested = false
        try insertAlone(store, [r])
        XCTAssertEqual(try store.instance(id: r.id), r)
        XCTAssertEqual(try store.instances(), [r])
        let changed = try store.update(instanceID: r.id) { x in
            x.fault = "changed"; x.host = nil; x.oldVmState = nil; x.sshPort = nil; x.configDrive = true
        }
        r.fault = "changed"; r.host = nil; r.oldVmState = nil; r.sshPort = nil; r.configDrive = true
        XCTAssertEqual(changed, r)
        XCTAssertEqual(try store.db.read { db in try InstanceRecord.fetchOne(db, key: r.id) }, r, "GRDB reads what the cached update wrote")
        XCTAssertEqual(try store.instance(id: r.id), r, "the statement reader reads NULL columns as nil")
        XCTAssertEqual(try store.instances(), [r])
        XCTAssertNil(try store.update(instanceID: "i-none") { $0.fault = "x" })
        XCTAssertNil(try store.instance(id: "i-none"))
    }

    /// A column the statement reader cannot decode is named in the error, and the cursor
    /// left mid-row does not keep the statement from being used again.
    func testAnUndecodableColumnIsNamed() throws {
        let store = try Store(path: dir + "/db.sqlite")
        var r = fullRecord()
        r.taskState = .none
        try insertAlone(store, [r])
        try store.db.writeWithoutTransaction { db in
            try db.execute(sql: "UPDATE instance SET old_vm_state = 'sideways' WHERE id = ?", arguments: [r.id])
        }
        XCTAssertThrowsError(try store.db.read { db in try InstanceRecord.fetch(db, id: r.id) }) { error in
            XCTAssertTrue("\(error)".contains("instance.old_vm_state holds 'sideways'"), "\(error)")
        }
        try store.db.writeWithoutTransaction { db in
            try db.execute(sql: "UPDATE instance SET old_vm_state = NULL WHERE id = ?", arguments: [r.id])
        }
        r.oldVmState = nil
        XCTAssertEqual(try store.db.read { db in try InstanceRecord.fetch(db, id: r.id) }, r)
    }

    /// A power-state sync changes its three columns, and only on idle rows.
    func testPowerSyncsChangeOnlyIdleRows() throws {
        let store = try Store(path: dir + "/db.sqlite")
        var idle = fullRecord()
        idle.id = "i-idle"; idle.name = "idle"; idle.taskState = .none; idle.deleteRequested = false
        var busy = idle
        busy.id = "i-busy"; busy.name = "busy"; busy.taskState = .poweringOff; busy.sshPort = 2223
        var deleting = idle
        deleting.id = "i-deleting"; deleting.name = "deleting"; deleting.deleteRequested = true; deleting.sshPort = 2224
        try insertAlone(store, [idle, busy, deleting])
        let applied = try store.applyPowerSyncs([idle, busy, deleting].map {
            PowerSyncChange(id: $0.id, vmState: .stopped, powerState: .shutdown, fault: "gone")
        } + [PowerSyncChange(id: "i-none", vmState: .stopped, powerState: .shutdown, fault: "gone")])
        XCTAssertEqual(applied, ["i-idle"])
        idle.vmState = .stopped; idle.powerState = .shutdown; idle.fault = "gone"
        XCTAssertEqual(try store.instance(id: idle.id), idle)
        XCTAssertEqual(try store.instance(id: busy.id), busy)
        XCTAssertEqual(try store.instance(id: deleting.id), deleting)
    }

    /// The rows the Codable coding wrote (every state directory made before this change)
    /// read back the same through the hand-written decoder, and the other way round.
    func testAgreesWithTheCodableCoding() throws {
        let r = fullRecord()
        let codable = try CodableInstance(r).databaseDictionary
        let manual = try r.databaseDictionary
        XCTAssertEqual(Set(codable.keys), Set(manual.keys))
        for (k, v) in manual { XCTAssertEqual(v, codable[k], k) }
        let row = Row(codable)
        XCTAssertEqual(try InstanceRecord(row: row), r)
    }
}

/// The Codable coding `InstanceRecord` had (GRDB's defaults with snake_case columns).
private struct CodableInstance: Encodable, EncodableRecord {
    static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    let r: InstanceRecord
    init(_ r: InstanceRecord) { self.r = r }
    func encode(to encoder: any Encoder) throws { try (r as any Encodable).encode(to: encoder) }
}
