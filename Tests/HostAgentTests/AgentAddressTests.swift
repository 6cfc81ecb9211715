import CloudCore
import HostAgent
import XCTest

final class AgentAddressTests: XCTestCase {
    func testAddresses() throws {
        XCTAssertTrue(try AgentAddress.split("10.250.0.21:7400") == ("10.250.0.21", 7400))
        XCTAssertTrue(try AgentAddress.split("10.250.0.21") == ("10.250.0.21", AgentAddress.defaultPort))
        for bad in ["", "host:1", "10.0.0.1:0", "10.0.0.1:70000", "10.0.0.256", "1.2.3", "1.2.3.4:5:6", "1.2.3.4:"] {
            XCTAssertThrowsError(try AgentAddress.split(bad), bad)
        }
    }
}
