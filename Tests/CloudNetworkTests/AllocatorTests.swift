import CloudCore
import CloudNetwork
import Foundation
import Synchronization
import XCTest

final class AllocatorTests: XCTestCase {
    let net = NetworkSpec(name: "n", mode: .flatdhcp, cidr: try! IPv4Network(cidr: "10.0.0.0/24"))

    func testReservedAddressesAreNovas() {
        XCTAssertTrue(net.isReserved(ip("10.0.0.0")))
        XCTAssertTrue(net.isReserved(ip("10.0.0.1")))
        XCTAssertFalse(net.isReserved(ip("10.0.0.2")))
        XCTAssertTrue(net.isReserved(ip("10.0.0.255")))
        XCTAssertTrue(net.isReserved(ip("10.0.1.7")))
        XCTAssertEqual(net.allocatableCount, 253)
        var s = net; s.dhcpStart = ip("10.0.0.100"); s.gateway = ip("10.0.0.200")
        XCTAssertTrue(s.isReserved(ip("10.0.0.99"))); XCTAssertFalse(s.isReserved(ip("10.0.0.100")))
        XCTAssertTrue(s.isReserved(ip("10.0.0.200")))
        XCTAssertEqual(s.allocatableBounds, ip("10.0.0.100").value...ip("10.0.0.254").value)
        XCTAssertEqual(s.allocatableCount, 154)
        XCTAssertEqual(s.freeCount(used: [ip("10.0.0.100"), ip("10.0.0.5"), ip("10.0.0.200"), ip("8.8.8.8")]), 153)
    }

    func testLowestFreeSkipsUsedAndGateway() {
        XCTAssertEqual(FixedIPAllocator.lowestFree(in: net, used: []), ip("10.0.0.2"))
        XCTAssertEqual(FixedIPAllocator.lowestFree(in: net, used: [ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.5")]), ip("10.0.0.4"))
        var s = net; s.dhcpStart = ip("10.0.0.10"); s.gateway = ip("10.0.0.11")
        XCTAssertEqual(FixedIPAllocator.lowestFree(in: s, used: [ip("10.0.0.10")]), ip("10.0.0.12"))
        XCTAssertEqual(FixedIPAllocator.lowestFree(in: s, used: [ip("10.0.0.10"), ip("10.0.0.10"), ip("1.2.3.4")]), ip("10.0.0.12"))
    }

    func testExhaustionAndRelease() throws {
        let small = NetworkSpec(name: "s", mode: .flat, cidr: cidr("10.0.0.0/29"))
        let pool = FixedIPPool(spec: small)
        let got = try (0..<5).map { _ in try pool.allocate() }
        XCTAssertEqual(got.map(\.description), ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"])
        assertRefused(try pool.allocate(), .noSpace, containing: "no free fixed IP")
        XCTAssertEqual(pool.freeCount, 0)
        pool.release(ip("10.0.0.4"))
        pool.release(ip("10.0.0.4"))
        XCTAssertEqual(pool.freeCount, 1)
        XCTAssertEqual(try pool.allocate(), ip("10.0.0.4"), "a released address is handed out again")
    }

    func testFastOnASlash16WithThousandsUsed() {
        let big = NetworkSpec.defaultNetwork
        var used = Set<IPv4Address>()
        for v in big.allocatableBounds!.prefix(40_000) { used.insert(IPv4Address(v)) }
        used.remove(ip("10.0.120.7"))
        let t0 = Date()
        for _ in 0..<20 { XCTAssertEqual(FixedIPAllocator.lowestFree(in: big, used: used), ip("10.0.120.7")) }
        XCTAssertLessThan(Date().timeIntervalSince(t0) / 20, 0.25, "one allocation among 40,000 used addresses")
        XCTAssertEqual(big.freeCount(used: used), big.allocatableCount - 39_999)
    }

    func testConcurrentAllocationsNeverDuplicate() throws {
        let pool = FixedIPPool(spec: NetworkSpec(name: "c", mode: .flatdhcp, cidr: cidr("10.0.0.0/22")))
        let results = Mutex<[IPv4Address]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            var mine: [IPv4Address] = []
            while let a = try? pool.allocate() { mine.append(a) }
            results.withLock { $0 += mine }
        }
        let all = results.withLock { $0 }
        XCTAssertEqual(all.count, pool.spec.allocatableCount)
        XCTAssertEqual(Set(all).count, all.count, "no address handed out twice")
        XCTAssertTrue(all.allSatisfy { !pool.spec.isReserved($0) })
    }

    func testUniqueMACsAvoidTheUsedSet() throws {
        var used = Set<String>()
        for _ in 0..<20000 { used.insert(try MACAddress.unique(avoiding: used)) }
        XCTAssertEqual(used.count, 20000)
        XCTAssertTrue(used.allSatisfy { $0.hasPrefix("fa:16:3e:") && MACAddress.isValid($0) })
    }

    func testUniqueMACWhenAlmostEverythingIsTaken() throws {
        // A deterministic generator that always proposes the same suffix: the walk still ends.
        struct Stuck: RandomNumberGenerator { mutating func next() -> UInt64 { 0 } }
        var rng = Stuck()
        let first = try MACAddress.unique(avoiding: [], using: &rng)
        let second = try MACAddress.unique(avoiding: [first.uppercased()], using: &rng)
        XCTAssertNotEqual(first, second)
    }
}
