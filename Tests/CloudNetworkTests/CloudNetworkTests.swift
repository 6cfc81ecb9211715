import CloudCore
import CloudNetwork
import XCTest

final class CIDRTests: XCTestCase {
    func testParsesAndReservesNovaAddresses() throws {
        let n = try IPv4Network(cidr: "10.0.0.0/24")
        XCTAssertEqual(n.broadcast.description, "10.0.0.255")
        XCTAssertEqual(n.defaultGateway.description, "10.0.0.1")
        let r = n.allocatableRange(gateway: n.defaultGateway)
        // .0 network, .1 gateway, .2 DHCP server, .255 broadcast are never handed out.
        XCTAssertEqual(IPv4Address(r.lowerBound).description, "10.0.0.3")
        XCTAssertEqual(IPv4Address(r.upperBound).description, "10.0.0.254")
        XCTAssertEqual(r.count, 252)
    }

    func testRefusesMalformed() {
        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0.1/24", "300.0.0.0/8", "a.b.c.d/8", "10.0.0.0/+8", "10.0.0.0/", "", "10.0.0/24", "10.0.0.0/24/1"] {
            XCTAssertThrowsError(try IPv4Network(cidr: bad), bad) { e in
                XCTAssertEqual((e as? CloudError)?.errno, .invalid)
            }
        }
    }

    func testReasonsNameTheProblem() {
        func reason(_ text: String) -> String {
            do { _ = try IPv4Network(cidr: text); return "" } catch { return error.reason }
        }
        XCTAssertTrue(reason("10.0.0.0").contains("address/prefix"))
        XCTAssertTrue(reason("10.0.0.300/24").contains("not an IPv4 address"))
        XCTAssertTrue(reason("10.0.0.0/40").contains("0 to 32"))
        XCTAssertTrue(reason("10.0.0.1/24").contains("did you mean 10.0.0.0/24"))
    }

    func testAnyPrefixParses() throws {
        XCTAssertEqual(try IPv4Network(cidr: "0.0.0.0/0").size, 0)
        XCTAssertEqual(try IPv4Network(cidr: "10.0.0.5/32").broadcast.description, "10.0.0.5")
        XCTAssertEqual(try IPv4Network(cidr: "10.0.0.0/31").netmask.description, "255.255.255.254")
        XCTAssertTrue(try IPv4Network(cidr: "0.0.0.0/0").contains(IPv4Address("192.168.1.1")!))
    }

    func testOverlapAndContains() throws {
        let a = try IPv4Network(cidr: "10.0.0.0/16"), b = try IPv4Network(cidr: "10.0.5.0/24"), c = try IPv4Network(cidr: "10.1.0.0/24")
        XCTAssertTrue(a.overlaps(b)); XCTAssertTrue(b.overlaps(a)); XCTAssertFalse(a.overlaps(c))
        XCTAssertTrue(a.contains(IPv4Address("10.0.200.1")!)); XCTAssertFalse(b.contains(IPv4Address("10.0.6.1")!))
        let adjacent = try IPv4Network(cidr: "10.1.1.0/24")
        XCTAssertFalse(c.overlaps(adjacent)); XCTAssertFalse(adjacent.overlaps(c))
        XCTAssertTrue(try IPv4Network(cidr: "0.0.0.0/0").overlaps(c))
    }

    func testMACsHaveNovaPrefixAndDiffer() {
        let macs = (0..<1000).map { _ in MACAddress.random() }
        for m in macs {
            XCTAssertTrue(m.hasPrefix("fa:16:3e:"))
            XCTAssertEqual(m.count, 17)
        }
        XCTAssertGreaterThan(Set(macs).count, 990)
    }
}
