import CloudCore
import Synchronization
import XCTest

/// `bothAtOnce`: the build's overlay and config drive, made side by side.
final class BothAtOnceTests: XCTestCase {
    func testBothRunAndNothingIsThrownWhenBothSucceed() throws {
        let ran = Mutex<[String]>([])
        try bothAtOnce({ ran.withLock { $0.append("overlay") } }, { ran.withLock { $0.append("drive") } })
        XCTAssertEqual(ran.withLock { $0.sorted() }, ["drive", "overlay"])
    }

    func testAFailureOfEitherIsThrownAfterTheOtherRanToItsEnd() {
        let ran = Mutex<[String]>([])
        for failing in 0..<2 {
            ran.withLock { $0 = [] }
            XCTAssertThrowsError(try bothAtOnce({ () throws(CloudError) in
                ran.withLock { $0.append("overlay") }
                if failing == 0 { throw CloudError.io("cannot write overlay") }
            }, { () throws(CloudError) in
                ran.withLock { $0.append("drive") }
                if failing == 1 { throw CloudError.noSpace("cannot write the config drive") }
            })) { error in
                XCTAssertEqual((error as? CloudError)?.reason, failing == 0 ? "cannot write overlay" : "cannot write the config drive")
            }
            XCTAssertEqual(ran.withLock { $0.sorted() }, ["drive", "overlay"], "both ran, whichever failed")
        }
    }

    func testWhenBothFailTheFirstOnesErrorIsThrown() {
        XCTAssertThrowsError(try bothAtOnce({ () throws(CloudError) in throw CloudError.io("first") },
                                            { () throws(CloudError) in throw CloudError.io("second") })) { error in
            XCTAssertEqual((error as? CloudError)?.reason, "first")
        }
    }
}
