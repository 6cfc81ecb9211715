@testable import CloudStore
import CloudCore
import Foundation
import GRDB
import XCTest

/// `Store.transaction`: BEGIN and COMMIT from cached statements, and a rollback whenever
/// the body or the commit itself fails, leaving the writer ready for the next transaction.
final class TransactionTests: StoreTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        try store.db.write { db in
            try db.execute(sql: """
                CREATE TABLE parent (id INTEGER PRIMARY KEY);
                CREATE TABLE child (parent_id INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
                """)
        }
    }

    func count(_ table: String) throws -> Int {
        try store.db.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? -1 }
    }

    func testABodyThatThrowsLeavesNothing() throws {
        struct Refused: Error {}
        XCTAssertThrowsError(try store.transaction { db in
            try db.execute(sql: "INSERT INTO parent (id) VALUES (1)")
            throw Refused()
        }) { XCTAssertTrue($0 is Refused) }
        XCTAssertEqual(try count("parent"), 0)
        try store.transaction { db in try db.execute(sql: "INSERT INTO parent (id) VALUES (2)") }
        XCTAssertEqual(try count("parent"), 1, "the writer is out of the failed transaction")
    }

    func testACommitThatFailsRollsBack() throws {
        // A deferred foreign key is checked at COMMIT: the commit statement itself fails.
        XCTAssertThrowsError(try store.transaction { db in
            try db.execute(sql: "INSERT INTO parent (id) VALUES (1)")
            try db.execute(sql: "INSERT INTO child (parent_id) VALUES (99)")
        }) { XCTAssertEqual(($0 as? DatabaseError)?.resultCode, .SQLITE_CONSTRAINT) }
        XCTAssertEqual(try count("parent"), 0)
        XCTAssertEqual(try count("child"), 0)
        try store.transaction { db in
            try db.execute(sql: "INSERT INTO parent (id) VALUES (99)")
            try db.execute(sql: "INSERT INTO child (parent_id) VALUES (99)")
        }
        XCTAssertEqual(try count("child"), 1)
        XCTAssertFalse(store.db.writeWithoutTransaction { $0.isInsideTransaction })
    }
}
