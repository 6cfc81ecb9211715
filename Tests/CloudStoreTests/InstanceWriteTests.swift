@testable import CloudStore
import CloudCore
import Foundation
import GRDB
import XCTest

/// An instance update writes only the columns it changed: SQLite rewrites the index entries
/// of every column an UPDATE sets, so a whole-row write cost six WAL pages instead of one.
final class InstanceWriteTests: StoreTestCase {
    func testAnUpdateSetsOnlyTheColumnsItChanges() throws {
        let r = try newInstance("web1")
        // Triggers on single columns tell which columns each UPDATE statement set.
        try store.db.write { db in
            try db.execute(sql: "CREATE TEMP TABLE touched (col TEXT)")
            for col in ["host", "name", "project", "task_state", "fault", "domain_xml"] {
                try db.execute(sql: "CREATE TEMP TRIGGER t_\(col) AFTER UPDATE OF \(col) ON main.instance BEGIN INSERT INTO touched VALUES ('\(col)'); END")
            }
        }
        func touched() throws -> [String] {
            try store.db.write { db in
                defer { _ = try? db.execute(sql: "DELETE FROM touched") }
                return try String.fetchAll(db, sql: "SELECT col FROM touched ORDER BY col")
            }
        }
        _ = try XCTUnwrap(store.claimIgnoringFit(r.id))
        XCTAssertEqual(try touched(), ["host", "task_state"])
        // The usage triggers still see the host change.
        let usage = try store.db.read { db in try Int.fetchOne(db, sql: "SELECT claims FROM host_usage WHERE host = 'h1'") }
        XCTAssertEqual(usage, 1)

        let moved = try XCTUnwrap(store.update(instanceID: r.id) { $0.taskState = .spawning; $0.fault = "x" })
        XCTAssertEqual(try touched(), ["fault", "task_state"])
        XCTAssertEqual(try store.instance(id: r.id), moved, "every other column kept its value")

        _ = try store.update(instanceID: r.id) { $0.fault = "x" }   // nothing changes: no statement at all
        XCTAssertEqual(try touched(), [])

        let xml = String(repeating: "<domain/>", count: 500)
        let after = try XCTUnwrap(store.update(instanceID: r.id) { $0.domainXml = xml })
        XCTAssertEqual(try touched(), ["domain_xml"])
        XCTAssertEqual(try store.instance(id: r.id), after)
        XCTAssertEqual(try store.instance(id: r.id)?.domainXml, xml)
    }
}

extension Store {
    /// `claim` with a check that admits any host.
    func claimIgnoringFit(_ id: String) throws(CloudError) -> InstanceRecord? {
        try claim(instanceID: id, host: "h1") { _, _ in true }
    }
}
