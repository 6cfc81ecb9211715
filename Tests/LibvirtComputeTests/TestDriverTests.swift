import CloudCore
import CloudTesting
import Foundation
import FoundationXML
import Synchronization
@testable import LibvirtCompute
import XCTest

/// The ComputeConnection contract against libvirt's in-process test driver (`test:///…`).
/// `test:///default` is shared by every connection in the process, so each test uses fresh
/// uuids and only asserts about its own domains.
final class TestDriverTests: XCTestCase {
    private var conn: LibvirtConnection!
    private var spawned: [String] = []
    private var temp: String?

    override func setUpWithError() throws {
        conn = try LibvirtDriver(virtType: .qemu, stateDir: "/tmp").open(uri: "test:///default")
    }

    override func tearDown() {
        for uuid in spawned { try? conn?.destroy(uuid: uuid) }
        conn = nil
        if let temp { try? FileManager.default.removeItem(atPath: temp) }
    }

    private func spawn(_ spec: DomainSpec) throws -> String {
        spawned.append(spec.uuid)
        return try conn.spawn(spec)
    }

    func testConnectReportsURIAndIsAlive() throws {
        let any = try LibvirtDriver(stateDir: "/tmp").connect(uri: "test:///default")
        XCTAssertEqual(any.uri, "test:///default")
        XCTAssertTrue(any.isAlive())
        XCTAssertEqual(conn.domainType, "test")
    }

    func testConnectFailureIsEIOWithLibvirtsMessage() {
        let err = assertCloudError(.io) { () throws(CloudError) in
            try LibvirtDriver(stateDir: "/tmp").connect(uri: "test:///nonexistent/host.xml")
        }
        XCTAssertTrue(err?.reason.contains("test:///nonexistent/host.xml") ?? false, err?.reason ?? "")
    }

    /// test:///default is 16 CPUs, 3 GiB RAM and one 100 GiB storage pool.
    func testCapacityOfDefaultTestHost() throws {
        let cap = try conn.capacity()
        XCTAssertEqual(cap.vcpus, 16)
        XCTAssertEqual(cap.ramMB, 3072)
        XCTAssertEqual(cap.diskGB, 100)
        XCTAssertEqual(cap.hypervisorType, "test")
        XCTAssertEqual(cap.arch, "i686", "the test driver's capabilities say i686")
    }

    func testSpawnPowerStateListDestroy() throws {
        let spec = Fixture.spec()
        XCTAssertNil(try conn.powerState(uuid: spec.uuid))
        let start = ContinuousClock.now
        let xml = try spawn(spec)
        print("[measure] test:///default define+start: \(String(format: "%.2f", Fixture.ms(since: start))) ms")
        XCTAssertTrue(xml.contains("<uuid>\(spec.uuid)</uuid>"), xml)
        XCTAssertTrue(xml.contains("<name>\(spec.domainName)</name>"), xml)
        XCTAssertEqual(try conn.powerState(uuid: spec.uuid), .running)
        let listed = try conn.listDomains().first { $0.uuid == spec.uuid }
        XCTAssertEqual(listed, DomainSummary(uuid: spec.uuid, name: spec.domainName, power: .running))

        try conn.destroy(uuid: spec.uuid)
        XCTAssertNil(try conn.powerState(uuid: spec.uuid))
        XCTAssertFalse(try conn.listDomains().contains { $0.uuid == spec.uuid })
        try conn.destroy(uuid: spec.uuid)   // idempotent
    }

    /// Found by FuzzMountTests: rmdir of a SUSPENDED instance on a test:/// host failed
    /// ("Refusing to undefine while domain managed save image exists"): the test driver
    /// refuses the NVRAM/checkpoint undefine flags, and the plain fallback kept the image.
    func testDestroyOfSuspendedDomainRemovesItsManagedSave() throws {
        let spec = Fixture.spec()
        _ = try spawn(spec)
        try conn.perform(.managedSave, uuid: spec.uuid)
        XCTAssertEqual(try conn.powerState(uuid: spec.uuid), .shutdown)
        try conn.destroy(uuid: spec.uuid)
        XCTAssertNil(try conn.powerState(uuid: spec.uuid))
        XCTAssertFalse(try conn.listDomains().contains { $0.uuid == spec.uuid })
    }

    func testDestroyOfMissingDomainSucceeds() throws {
        try conn.destroy(uuid: Fixture.uuid())
        XCTAssertNil(try conn.powerState(uuid: Fixture.uuid()))
    }

    /// A second spawn with the same uuid is refused and leaves the first domain running.
    func testDuplicateUUIDIsRefusedAndLeavesTheOriginal() throws {
        let spec = Fixture.spec()
        _ = try spawn(spec)
        var dup = spec
        dup.domainName = "cloudfs-other-\(Fixture.uuid())"
        assertCloudError(.exists) { () throws(CloudError) in try conn.spawn(dup) }
        XCTAssertEqual(try conn.powerState(uuid: spec.uuid), .running)
        XCTAssertFalse(try conn.listDomains().contains { $0.name == dup.domainName })

        var sameName = Fixture.spec()
        sameName.domainName = spec.domainName
        assertCloudError(.exists) { () throws(CloudError) in try conn.spawn(sameName) }
        XCTAssertNil(try conn.powerState(uuid: sameName.uuid))
    }

    /// Racing spawns of one uuid: exactly one wins, the others get EEXIST and the winner's
    /// domain survives their failures.
    func testConcurrentSpawnsOfOneUUID() throws {
        let conn = try XCTUnwrap(conn)
        let spec = Fixture.spec()
        spawned.append(spec.uuid)
        let errnos = Mutex<[Errno?]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            let result: Errno? = { () -> Errno? in
                do throws(CloudError) { _ = try conn.spawn(spec); return nil } catch { return error.errno }
            }()
            errnos.withLock { $0.append(result) }
        }
        let all = errnos.withLock { $0 }
        XCTAssertEqual(all.filter { $0 == nil }.count, 1, "\(all)")
        XCTAssertEqual(all.filter { $0 == .exists }.count, 7, "\(all)")
        XCTAssertEqual(try conn.powerState(uuid: spec.uuid), .running)
    }

    /// libvirt refuses the definition (bad MAC): EIO with libvirt's words, nothing defined.
    func testRefusedDefinitionLeavesNothing() throws {
        let before = try conn.listDomains().count
        let spec = Fixture.spec(mac: "not-a-mac")
        let err = assertCloudError(.io) { () throws(CloudError) in try conn.spawn(spec) }
        XCTAssertTrue(err?.reason.contains("define domain \(spec.domainName)") ?? false, err?.reason ?? "")
        XCTAssertTrue(err?.reason.contains("not-a-mac") ?? false, "libvirt's reason kept: \(err?.reason ?? "")")
        XCTAssertNil(try conn.powerState(uuid: spec.uuid))
        XCTAssertEqual(try conn.listDomains().count, before)
        XCTAssertFalse(try conn.listDomains().contains { $0.name == spec.domainName })
    }

    func testInvalidSpecIsRefusedBeforeLibvirt() throws {
        let zeroRAM = Fixture.spec(ramMB: 0)
        assertCloudError(.invalid) { () throws(CloudError) in try conn.spawn(zeroRAM) }
        XCTAssertNil(try conn.powerState(uuid: zeroRAM.uuid))
        var badUUID = Fixture.spec()
        badUUID.uuid = "not-a-uuid"
        assertCloudError(.invalid) { () throws(CloudError) in try conn.spawn(badUUID) }
        XCTAssertNil(try conn.powerState(uuid: badUUID.uuid), "a malformed uuid names no domain")
        try conn.destroy(uuid: badUUID.uuid)
        let control = Fixture.spec(diskPath: "/tmp/bad\u{7}path")
        assertCloudError(.invalid) { () throws(CloudError) in try conn.spawn(control) }
        XCTAssertNil(try conn.powerState(uuid: control.uuid))
    }

    /// Odd paths reach libvirt intact: the XML libvirt returns names the same file.
    func testOddPathsRoundTripThroughLibvirt() throws {
        let odd = "/tmp/cloud fs/it's \"odd\" & <strange>/disk.qcow2"
        let xml = try spawn(Fixture.spec(diskPath: odd))
        let doc = try XMLDocument(xmlString: xml, options: [])
        let source = try doc.nodes(forXPath: "/domain/devices/disk/source/@file").first?.stringValue
        XCTAssertEqual(source, odd)
    }

    /// One connection used from many threads at once; each failure carries its own thread's
    /// libvirt error (errors are thread-local), never another call's.
    func testConcurrentUseKeepsErrorsPerCall() throws {
        let conn = try XCTUnwrap(conn)
        let results = Mutex<[Int: String]>([:])
        DispatchQueue.concurrentPerform(iterations: 40) { i in
            let uuid = Fixture.uuid()
            let spec = Fixture.spec(uuid: uuid, mac: i % 2 == 0 ? "fa:16:3e:00:00:01" : "bad-mac-\(i)")
            let outcome: String = { () -> String in
                do throws(CloudError) {
                    _ = try conn.spawn(spec)
                    defer { try? conn.destroy(uuid: uuid) }
                    return try conn.powerState(uuid: uuid) == .running ? "running" : "not running"
                } catch {
                    return error.reason
                }
            }()
            results.withLock { $0[i] = outcome }
        }
        let all = results.withLock { $0 }
        XCTAssertEqual(all.count, 40)
        for (i, outcome) in all {
            if i % 2 == 0 {
                XCTAssertEqual(outcome, "running", "call \(i)")
            } else {
                XCTAssertTrue(outcome.contains("'bad-mac-\(i)'"), "call \(i) got: \(outcome)")
            }
        }
    }

    /// Fake hosts from examples/hosts: different sizes, disk = 100 GiB per storage pool.
    func testFakeHostFiles() throws {
        let hosts = TestPaths.packageRoot + "/examples/hosts"
        let expected: [(String, Int, Int, Int)] = [
            ("small", 4, 8192, 100), ("medium", 16, 32768, 200), ("large", 64, 131072, 400),
        ]
        let driver = LibvirtDriver(virtType: .qemu, stateDir: "/tmp")
        for (name, vcpus, ramMB, diskGB) in expected {
            let host = try driver.open(uri: "test://\(hosts)/\(name).xml")
            let cap = try host.capacity()
            XCTAssertEqual(cap, HostCapacity(vcpus: vcpus, ramMB: ramMB, diskGB: diskGB, hypervisorType: "test",
                                             arch: cap.arch), name)
            XCTAssertEqual(try host.listDomains(), [], "\(name) starts empty")
            let spec = Fixture.spec()
            _ = try host.spawn(spec)
            XCTAssertEqual(try host.powerState(uuid: spec.uuid), .running)
            XCTAssertNil(try conn.powerState(uuid: spec.uuid), "hosts are separate")
            try host.destroy(uuid: spec.uuid)
            XCTAssertEqual(try host.listDomains(), [])
        }
    }

    func testEmbedURIParsingAndQemuConf() throws {
        let dir = TestPaths.makeTempDir("cloudfs-virt-conf")
        temp = dir
        let root = dir + "/state dir/libvirt"
        let driver = LibvirtDriver(virtType: .qemu, stateDir: dir + "/state dir")
        XCTAssertEqual(EmbedRoot.root(of: driver.embeddedURI), root)
        XCTAssertEqual(EmbedRoot.root(of: "qemu:///embed?root=/x/y"), "/x/y")
        XCTAssertNil(EmbedRoot.root(of: "qemu:///system"))
        XCTAssertNil(EmbedRoot.root(of: "test:///default"))

        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try "# mine\nuser = \"libvirt-qemu\"\nmax_files = 100\n".write(toFile: root + "/etc/qemu.conf",
                                                                    atomically: true, encoding: .utf8)
        try EmbedRoot.prepare(root: root)
        try EmbedRoot.prepare(root: root)   // idempotent
        let conf = try String(contentsOfFile: root + "/etc/qemu.conf", encoding: .utf8)
        XCTAssertEqual(conf, "# mine\nmax_files = 100\nuser = \"root\"\ngroup = \"root\"\nstdio_handler = \"file\"\nnamespaces = []\n")

        let fresh = dir + "/fresh"
        try EmbedRoot.prepare(root: fresh)
        XCTAssertEqual(try String(contentsOfFile: fresh + "/etc/qemu.conf", encoding: .utf8),
                       "user = \"root\"\ngroup = \"root\"\nstdio_handler = \"file\"\nnamespaces = []\n")
    }

    /// The lifecycle calls keep the domain's handle: it follows the domain through stops
    /// and a redefinition, and a domain removed behind the connection's back (another
    /// connection to the shared test:///default) reads as gone, as a fresh lookup would.
    func testKeptDomainHandlesFollowTheDomainAndNoticeItGone() throws {
        let spec = Fixture.spec()
        _ = try spawn(spec)
        XCTAssertEqual(try conn.powerState(uuid: spec.uuid), .running)
        try conn.perform(.powerOff, uuid: spec.uuid)
        XCTAssertEqual(try conn.powerState(uuid: spec.uuid), .shutdown)
        try conn.perform(.start, uuid: spec.uuid)
        XCTAssertEqual(try conn.powerState(uuid: spec.uuid), .running)

        // Removed through another connection: the kept handle's calls find no domain.
        let other = try LibvirtDriver(virtType: .qemu, stateDir: "/tmp").open(uri: "test:///default")
        try other.destroy(uuid: spec.uuid)
        XCTAssertNil(try conn.powerState(uuid: spec.uuid))
        _ = assertCloudError(.noEntry) { () throws(CloudError) in try self.conn.perform(.powerOff, uuid: spec.uuid) }

        // Defined again (here, and then through the other connection): found again.
        _ = try conn.spawn(spec)
        XCTAssertEqual(try conn.powerState(uuid: spec.uuid), .running)
        try other.destroy(uuid: spec.uuid)
        _ = try other.spawn(spec)
        try conn.perform(.powerOff, uuid: spec.uuid)
        XCTAssertEqual(try other.powerState(uuid: spec.uuid), .shutdown, "the kept handle reached the new definition")
    }
}
