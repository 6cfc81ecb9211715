import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import XCTest

/// Claims are atomic: many concurrent builds on a few small hosts never put more on a
/// host than its capacity × allocation ratio; the builds that do not fit end in ERROR
/// with Nova's "No valid host was found" and the filter that eliminated the hosts.
final class ConcurrentClaimTests: EngineTestCase {
    /// Ten fake hosts of 2 vCPUs and 1 GiB: RAM (ratio 1.0) allows 8 m1.nano each.
    override func makeEngine() throws -> Engine {
        var uris: [String] = []
        for i in 0..<10 {
            let path = "\(stateDir)/node\(i).xml"
            try "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads><active>2</active></cpu><memory>1048576</memory></node>"
                .write(toFile: path, atomically: true, encoding: .utf8)
            uris.append("test://" + path)
        }
        return try Engine(config: engineConfiguration(hostURIs: uris), driver: driver)
    }

    func testTwoHundredConcurrentMkdirsNeverOversubscribe() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        let names = (0..<200).map { "burst\($0)" }
        let e = engine!, r = root
        DispatchQueue.concurrentPerform(iterations: names.count) { i in _ = try? e.instances.create(names[i], r) }
        let infos = names.compactMap { waitStable($0, timeout: 60) }
        XCTAssertEqual(infos.count, 200)
        let active = infos.filter { $0.status == .ACTIVE }
        let errors = infos.filter { $0.status == .ERROR }
        XCTAssertEqual(active.count, 80, "10 hosts × 8 m1.nano")
        XCTAssertEqual(errors.count, 120)
        for err in errors {
            XCTAssertTrue(err.fault.contains("No valid host was found"), err.fault)
            XCTAssertTrue(err.fault.contains("RamFilter removed"), err.fault)
            XCTAssertEqual(err.ips, [])
        }
        for h in engine.hosts.list(.system) {
            XCTAssertLessThanOrEqual(h.ramMBUsed, h.ramMB, "\(h.name) oversubscribed RAM")
            XCTAssertLessThanOrEqual(h.vcpusUsed, h.vcpus * 4, "\(h.name) oversubscribed vCPUs")
            XCTAssertEqual(h.instances.count, 8, h.name)
        }
        XCTAssertEqual(Set(active.flatMap(\.ips)).count, 80)
        // Resources return on delete: the losers' room is there for the next build.
        for n in active.prefix(5).map(\.name) { try engine.instances.delete(n, root) }
        for n in active.prefix(5).map(\.name) { waitGone(n) }
        _ = try engine.instances.create("after", root)
        XCTAssertEqual(waitStable("after")?.status, .ACTIVE)
    }
}
