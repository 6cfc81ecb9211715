@testable import CloudStore
import CloudCore
import CloudTesting
import Foundation
import GRDB
import XCTest

/// A fresh store in a temporary directory with one host, `h1`, for a test case to use.
class StoreTestCase: XCTestCase {
    var dir = ""
    var store: Store!

    override func setUpWithError() throws {
        dir = TestPaths.makeTempDir("store")
        store = try Store(path: dir + "/db.sqlite")
        _ = try store.registerHost(HostRecord(name: "h1", uri: "test:///default"))
    }

    override func tearDown() { store = nil; try? FileManager.default.removeItem(atPath: dir) }

    /// Inserts an instance in building/scheduling, with its build task queued (or taken
    /// for the worker the engine would dispatch: `handOver`).
    func newInstance(_ name: String, handOver: Bool = false) throws -> InstanceRecord {
        let image = ImageInfo(name: "img", id: "img-id", status: .active, format: .raw, size: 1, virtualSize: 1,
                              checksum: "", created: Date(), minRamMB: 0, minDiskGB: 0, properties: [:], ownerUID: 0, path: "/x")
        let r = InstanceRecord(id: UUID().uuidString, name: name, ownerUID: 0, project: "p", image: image,
                               flavor: Flavor(name: "f", vcpus: 1, ramMB: 64, diskGB: 1), created: Date())
        try store.insertInstance(r, handOver: handOver)
        return r
    }
}
