@testable import CloudFS
import FuseKit
import XCTest

/// The page-cache rules of `PageCacheLedger`, one decision at a time (the mount test
/// `PageCacheMountTests` races them against a real kernel).
final class PageCacheLedgerTests: XCTestCase {
    let ino = Inode(42)
    let active = Array("ACTIVE\n".utf8), shutoff = Array("SHUTOFF\n".utf8)

    func testFirstOpenTakesTheInodeAndInvalidatesWhatTheKernelMayHold() {
        let l = PageCacheLedger()
        let (d, size) = l.open(ino, active)
        XCTAssertEqual(d, .replace)
        XCTAssertTrue(size, "the kernel's size is unknown before the first cached open")
        // Until the invalidation is sent, another open must not trust the kernel's copy.
        XCTAssertEqual(l.open(ino, active).decision, .direct)
        l.invalidated(ino)
        XCTAssertEqual(l.open(ino, active).decision, .keep)
    }

    func testSameValueKeepsOtherValueGoesDirectUntilReleased() {
        let l = PageCacheLedger()
        _ = l.open(ino, active); l.invalidated(ino)
        XCTAssertEqual(l.reporting(ino, size: 7), 7)
        XCTAssertEqual(l.open(ino, active).decision, .keep)
        XCTAssertEqual(l.open(ino, shutoff).decision, .direct, "old pages are being read")
        XCTAssertFalse(l.released(ino))
        XCTAssertFalse(l.released(ino))
        let (d, size) = l.open(ino, shutoff)
        XCTAssertEqual(d, .replace)
        XCTAssertTrue(size, "the kernel was told 7 bytes")
    }

    func testAttributesTellTheCachedSizeWhileItIsRead() {
        let l = PageCacheLedger()
        _ = l.open(ino, active); l.invalidated(ino)
        XCTAssertEqual(l.reporting(ino, size: 8), 7, "a reader of ACTIVE\\n must not get SHUTOFF\\n's size")
        _ = l.released(ino)
        XCTAssertEqual(l.reporting(ino, size: 8), 8)
        // 7 and 8 were both told since the last invalidation: the next open re-validates.
        XCTAssertEqual(l.open(ino, active).invalidateSize, true)
    }

    func testUntrackedInodesAreNotRecorded() {
        let l = PageCacheLedger()
        XCTAssertEqual(l.reporting(Inode(7), size: 100), 100)
        XCTAssertEqual(l.count, 0)
    }

    func testChangeNoticeInvalidationWaitsForTheLastRelease() {
        let l = PageCacheLedger()
        _ = l.open(ino, active); l.invalidated(ino)
        XCTAssertFalse(l.beginInvalidation(ino), "a reader may be waiting for a GETATTR")
        XCTAssertTrue(l.released(ino), "the refused invalidation is due at the last release")
        XCTAssertTrue(l.beginInvalidation(ino))
        XCTAssertEqual(l.open(ino, active).decision, .direct, "invalidation under way")
        l.invalidated(ino)
        XCTAssertEqual(l.open(ino, active).decision, .keep)
    }

    func testForgetDropsTheEntry() {
        let l = PageCacheLedger()
        _ = l.open(ino, active)
        XCTAssertEqual(l.count, 1)
        l.forget(ino)
        XCTAssertEqual(l.count, 0)
    }
}
