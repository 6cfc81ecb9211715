import CloudCore
import CloudNetwork
import XCTest

final class SecurityGroupRuleTests: XCTestCase {
    func testParsesAndRendersCanonically() throws {
        let text = """
        # web servers
        tcp 22 0.0.0.0/0
        TCP   80-80\t10.0.0.0/8   # http

        udp 1000-2000 192.168.0.0/16
        icmp - 0.0.0.0/0
        tcp - 10.1.0.0/16
        tcp 22 0.0.0.0/0
        """
        let rules = try SecurityGroupRule.parseRules(text)
        XCTAssertEqual(SecurityGroupRule.render(rules), """
        tcp 22 0.0.0.0/0
        tcp 80 10.0.0.0/8
        udp 1000-2000 192.168.0.0/16
        icmp - 0.0.0.0/0
        tcp - 10.1.0.0/16

        """)
        XCTAssertEqual(try SecurityGroupRule.parseRules(SecurityGroupRule.render(rules)), rules, "the rendering parses back")
        XCTAssertEqual(try SecurityGroupRule.parseRules(bytes: Array("\n# nothing\n".utf8)), [])
    }

    func testErrorsCarryLineNumbersAndReasons() {
        let cases: [(String, String)] = [
            ("tcp 22", "line 1: expected 'PROTO PORTS CIDR'"),
            ("# c\nsctp 22 0.0.0.0/0", "line 2: protocol 'sctp'"),
            ("tcp 0 0.0.0.0/0", "port 0 is outside 1-65535"),
            ("tcp 65536 0.0.0.0/0", "outside 1-65535"),
            ("tcp 90-80 0.0.0.0/0", "runs backwards"),
            ("tcp 1-2-3 0.0.0.0/0", "not N, N-M or -"),
            ("tcp x 0.0.0.0/0", "not N, N-M or -"),
            ("icmp 8 0.0.0.0/0", "icmp has no ports"),
            ("tcp 22 10.0.0.1/8", "host bits set"),
            ("tcp 22 anywhere", "not a CIDR"),
            ("\n\ntcp 22 0.0.0.0/0 extra", "line 3:"),
        ]
        for (text, fragment) in cases { assertRefused(try SecurityGroupRule.parseRules(text), containing: fragment) }
        assertRefused(try SecurityGroupRule.parseRules(bytes: [0x74, 0x00]), containing: "NUL")
    }
}
