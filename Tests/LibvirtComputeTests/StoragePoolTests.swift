import CloudCore
import CloudTesting
import Foundation
@testable import LibvirtCompute
import XCTest

/// The storage pool half of a connection (a remote host's disks), against libvirt's test
/// driver, which keeps pools and volumes in memory. Uploads and downloads need a real
/// daemon: ComputeNodeMountTests streams images to one.
final class StoragePoolTests: XCTestCase {
    func testPoolIsMadeOnceAndOverlaysComeAndGo() throws {
        // A fake host of its own: test:///default is shared by the whole test process.
        let conn = try LibvirtDriver(stateDir: "/tmp").open(uri: "test://" + TestPaths.packageRoot + "/examples/hosts/small.xml")
        let name = "cloudfs-t\(getpid())"
        let dir = try conn.ensurePool(name, directory: "/var/lib/libvirt/images/\(name)")
        XCTAssertEqual(dir, "/var/lib/libvirt/images/\(name)")
        XCTAssertEqual(try conn.ensurePool(name, directory: "/elsewhere"), dir, "an existing pool keeps its directory")
        let path = try conn.createOverlay(pool: name, volume: "i1.disk", backingPath: dir + "/image-x",
                                          backingFormat: "qcow2", capacityBytes: 1 << 30)
        XCTAssertEqual(path, dir + "/i1.disk")
        XCTAssertEqual(try conn.volumeNames(pool: name), ["i1.disk"])
        try conn.deleteVolume(pool: name, volume: "i1.disk")
        try conn.deleteVolume(pool: name, volume: "i1.disk")   // missing: success
        try conn.deleteVolume(pool: "no-such-pool", volume: "x")
        XCTAssertEqual(try conn.volumeNames(pool: name), [])
        XCTAssertEqual(try conn.volumeNames(pool: "no-such-pool"), [])
    }

    func testVolumeXMLNamesFormatBackingAndModernQcow2() {
        let xml = LibvirtConnection.volumeXML(name: "a<b", format: "qcow2", capacity: 1024, backing: ("/p/img", "raw"))
        XCTAssertTrue(xml.contains("<name>a&lt;b</name>"), xml)
        XCTAssertTrue(xml.contains("<capacity unit='bytes'>1024</capacity>"), xml)
        XCTAssertTrue(xml.contains("<format type='qcow2'/><compat>1.1</compat>"), xml)
        XCTAssertTrue(xml.contains("<backingStore><path>/p/img</path><format type='raw'/></backingStore>"), xml)
        let upload = LibvirtConnection.volumeXML(name: "u", format: "raw", capacity: 5, allocation: 0)
        XCTAssertTrue(upload.contains("<allocation unit='bytes'>0</allocation>") && !upload.contains("compat"), upload)
    }
}
