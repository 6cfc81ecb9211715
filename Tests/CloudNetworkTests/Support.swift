import CloudCore
import CloudNetwork
import XCTest

/// Asserts that `body` throws a `CloudError` with `errno` and a reason containing `fragment`.
func assertRefused<T>(_ body: @autoclosure () throws -> T, _ errno: Errno = .invalid, containing fragment: String,
                      file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected a refusal mentioning '\(fragment)'", file: file, line: line)
    } catch let e as CloudError {
        XCTAssertEqual(e.errno, errno, e.reason, file: file, line: line)
        XCTAssertTrue(e.reason.contains(fragment), "reason '\(e.reason)' lacks '\(fragment)'", file: file, line: line)
    } catch {
        XCTFail("not a CloudError: \(error)", file: file, line: line)
    }
}

func cidr(_ s: String) -> IPv4Network { try! IPv4Network(cidr: s) }
func ip(_ s: String) -> IPv4Address { IPv4Address(s)! }
