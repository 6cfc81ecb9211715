import CloudCore
import CloudStore
import Foundation
import XCTest

final class StoreTests: XCTestCase {
    var dir = ""
    var store: Store!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "store-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        store = try Store(path: dir + "/db.sqlite")
        try store.ensureNetwork(NetworkRecord(name: "net", cidr: "10.0.0.0/29", gateway: "10.0.0.1", mode: "flat"))
        _ = try store.registerHost(HostRecord(name: "h1", uri: "test:///default"))
    }

    override func tearDown() { store = nil; try? FileManager.default.removeItem(atPath: dir) }

    func image() -> ImageInfo {
        ImageInfo(name: "img", id: "img-id", status: .active, format: .raw, size: 1, virtualSize: 1, checksum: "",
                  created: Date(), minRamMB: 0, minDiskGB: 0, properties: [:], ownerUID: 0, path: "/x")
    }

    func newInstance(_ name: String, ram: Int = 512) throws -> InstanceRecord {
        let r = InstanceRecord(id: UUID().uuidString, name: name, ownerUID: 0, project: "p", image: image(),
                               flavor: Flavor(name: "f", vcpus: 1, ramMB: ram, diskGB: 1), created: Date())
        try store.insertInstance(r)
        return r
    }

    func testMigrationsSeedAndSettings() throws {
        try store.seedFlavorsOnce(Flavor.seed)
        XCTAssertEqual(try store.flavors().count, Flavor.seed.count)
        try store.deleteFlavor("m1.tiny")
        try store.seedFlavorsOnce(Flavor.seed)   // a deleted seed flavor stays deleted
        XCTAssertEqual(try store.flavors().count, Flavor.seed.count - 1)
        try store.setSetting(.defaultValue(.image), "x")
        XCTAssertEqual(try store.setting(.defaultValue(.image)), "x")
        try store.setSetting(.defaultValue(.image), "")
        XCTAssertNil(try store.setting(.defaultValue(.image)))
    }

    func testDuplicateNamesAreEEXIST() throws {
        _ = try newInstance("web1")
        XCTAssertThrowsError(try newInstance("web1")) { XCTAssertEqual(($0 as? CloudError)?.errno, .exists) }
    }

    func testCompareAndSetTransitions() throws {
        let r = try newInstance("web1")
        let moved = try store.update(instanceID: r.id, expecting: [.scheduling]) { $0.taskState = .networking }
        XCTAssertEqual(moved?.taskState, .networking)
        // A second writer expecting the old state loses.
        XCTAssertNil(try store.update(instanceID: r.id, expecting: [.scheduling]) { $0.taskState = .spawning })
        // After a delete request, build steps no longer apply.
        _ = try store.requestDelete(instanceID: r.id)
        XCTAssertNil(try store.update(instanceID: r.id, expecting: [.deleting]) { $0.taskState = .spawning })
        XCTAssertEqual(try store.instance(id: r.id)?.taskState, .deleting)
    }

    func testClaimsNeverOversubscribeUnderConcurrency() throws {
        let ids = try (0..<40).map { try newInstance("i\($0)", ram: 512).id }
        let capacity = 4096   // room for 8
        let store = self.store!
        DispatchQueue.concurrentPerform(iterations: ids.count) { i in
            _ = try? store.claim(instanceID: ids[i], host: "h1") { used, _ in used.ramMB + 512 <= capacity }
        }
        let placed = try store.instances().filter { $0.host == "h1" }
        XCTAssertEqual(placed.count, 8)
        XCTAssertEqual(placed.map(\.ramMb).reduce(0, +), capacity)
    }

    func testFixedIPsLowestFreeUniqueReleasedAndExhausted() throws {
        // 10.0.0.0/29: .3 .. .6 allocatable (network, gateway, dhcp, broadcast reserved).
        let range: ClosedRange<UInt32> = 0x0A00_0003...0x0A00_0006
        let ids = try (0..<5).map { try newInstance("i\($0)").id }
        var got: [Int64] = []
        for (i, id) in ids.prefix(4).enumerated() {
            got.append(try store.allocateFixedIP(instanceID: id, network: "net", range: range) { "fa:16:3e:00:00:0\(i)" }.address)
        }
        XCTAssertEqual(got, [0x0A00_0003, 0x0A00_0004, 0x0A00_0005, 0x0A00_0006].map(Int64.init))
        XCTAssertThrowsError(try store.allocateFixedIP(instanceID: ids[4], network: "net", range: range) { "fa:16:3e:aa:bb:cc" }) {
            XCTAssertEqual(($0 as? CloudError)?.errno, .noSpace)
            XCTAssertTrue(($0 as? CloudError)?.reason.contains("No more fixed IPs") ?? false)
        }
        // Idempotent for the same instance.
        XCTAssertEqual(try store.allocateFixedIP(instanceID: ids[1], network: "net", range: range) { "x" }.address, 0x0A00_0004)
        try store.releaseFixedIPs(instanceID: ids[1])
        XCTAssertEqual(try store.freeAddressCount(network: "net", range: range), 1)
        XCTAssertEqual(try store.allocateFixedIP(instanceID: ids[4], network: "net", range: range) { "fa:16:3e:01:02:03" }.address, 0x0A00_0004)
        // Deleting an instance releases its address (ON DELETE CASCADE).
        try store.deleteInstance(id: ids[0])
        XCTAssertEqual(try store.freeAddressCount(network: "net", range: range), 1)
    }

    func testConcurrentAllocationsAreUnique() throws {
        try store.ensureNetwork(NetworkRecord(name: "big", cidr: "10.1.0.0/16", gateway: "10.1.0.1", mode: "flat"))
        let ids = try (0..<200).map { try newInstance("c\($0)").id }
        let range: ClosedRange<UInt32> = 0x0A01_0003...0x0A01_FFFE
        let store = self.store!
        DispatchQueue.concurrentPerform(iterations: ids.count) { i in
            _ = try? store.allocateFixedIP(instanceID: ids[i], network: "big", range: range) {
                String(format: "fa:16:3e:%02x:%02x:%02x", UInt8.random(in: 0...255), UInt8.random(in: 0...255), UInt8.random(in: 0...255))
            }
        }
        let all = try store.fixedIPs().filter { $0.network == "big" }
        XCTAssertEqual(all.count, 200)
        XCTAssertEqual(Set(all.map(\.address)).count, 200)
        XCTAssertEqual(Set(all.map(\.mac)).count, 200)
        XCTAssertEqual(all.map(\.address).max(), Int64(0x0A01_0003 + 199))
    }

    func testUnfinishedImagesArePurged() throws {
        var r = ImageRecord(id: "a", name: "a", status: .saving, format: .unknown, created: Date(), ownerUID: 0, path: dir + "/a")
        try store.insertImage(r)
        r = ImageRecord(id: "b", name: "b", status: .active, format: .raw, created: Date(), ownerUID: 0, path: dir + "/b")
        try store.insertImage(r)
        try store.setImageProperty(imageID: "a", key: "k", value: "v")
        XCTAssertEqual(try store.purgeUnfinishedImages(), [dir + "/a"])
        XCTAssertEqual(try store.images().map(\.name), ["b"])
    }

    func testEventsPersistInOrder() throws {
        try store.appendEvents(["one", "two"])
        try store.appendEvents(["three"])
        XCTAssertEqual(try store.eventLines(), ["one", "two", "three"])
    }

    func testQueuedEventsRideTheNextWriteAndSurviveAFailedOne() throws {
        XCTAssertTrue(store.queueEvents(["a"]), "the first line tells the caller to schedule a flush")
        XCTAssertFalse(store.queueEvents(["b"]))
        // A transaction that fails takes nothing with it: the lines wait for the next one.
        XCTAssertThrowsError(try store.updateFlavor(Flavor(name: "no-such-flavor", vcpus: 1, ramMB: 1, diskGB: 1)))
        XCTAssertEqual(try store.eventLines(), [])
        try store.setSetting(.defaultValue(.image), "x")   // any write carries them, in order
        XCTAssertEqual(try store.eventLines(), ["a", "b"])
        try store.flushEvents()   // nothing queued: no transaction, no duplicates
        try store.appendEvents(["c"])
        XCTAssertEqual(try store.eventLines(), ["a", "b", "c"])
    }
}
