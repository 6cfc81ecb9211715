import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import LibvirtCompute
import XCTest

/// Cinder's volumes through the engine: every state transition and refusal, quotas,
/// sources, snapshots, and attach / extend / snapshot / detach on real QEMU domains of
/// libvirt's embedded driver (guests with no OS: QEMU takes hotplugs and block jobs without
/// one, and never answers an unplug request, which is what the detach retries need).
final class VolumeTests: EngineTestCase {
    /// The process's one embedded QEMU root (shared with every test that boots domains).
    var hostURI: String { "qemu:///embed?root=\(TestPaths.embedRoot)" }

    /// Engines of this class share the process's one connection to the embedded root.
    override func makeEngine() throws -> Engine {
        driver = FaultyDriver(wrapping: SharingDriver(LibvirtDriver(virtType: .qemu, stateDir: TestPaths.embedRoot)))
        return try Engine(config: engineConfiguration(hostURIs: [hostURI]), driver: driver)
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        try upload("blank", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
    }

    func volumeFile(_ v: VolumeInfo) -> String { stateDir + "/volumes/volume-\(v.id).qcow2" }

    /// The virtual size of a qcow2 file in bytes (qemu-img info, shared lock: QEMU may hold it).
    func virtualSize(_ path: String) throws -> Int64 {
        let out = try run(["qemu-img", "info", "-U", "--output=json", path])
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        return try XCTUnwrap((json["virtual-size"] as? NSNumber)?.int64Value)
    }

    /// The first `n` bytes a qcow2 file's guest would read.
    func firstBytes(_ path: String, _ n: Int = 16) throws -> [UInt8] {
        let raw = stateDir + "/peek.raw"
        _ = try run(["qemu-img", "convert", "-U", "-O", "raw", path, raw])
        defer { try? FileManager.default.removeItem(atPath: raw) }
        return Array(try XCTUnwrap(FileManager.default.contents(atPath: raw)).prefix(n))
    }

    @discardableResult
    func run(_ argv: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = argv
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, argv.joined(separator: " "))
        return String(decoding: data, as: UTF8.self)
    }

    func volume(_ name: String) throws -> VolumeInfo { try XCTUnwrap(engine.volumes.get(name, root), "volume \(name)") }

    func activeInstance(_ name: String) throws -> InstanceInfo {
        _ = try engine.instances.create(name, root)
        let info = try XCTUnwrap(waitStable(name))
        XCTAssertEqual(info.status, .ACTIVE, info.fault)
        return info
    }

    func hostConnection() throws -> any ComputeConnection {
        try driver.connect(uri: hostURI)
    }

    func testCreateDeleteAndCindersDeleteRules() throws {
        try engine.volumes.create("data", root)
        var v = try volume("data")
        XCTAssertEqual(v.status, .available)
        XCTAssertEqual(v.sizeGB, 1)
        XCTAssertEqual(v.backend, "file")
        XCTAssertEqual(try virtualSize(volumeFile(v)), 1 << 30)
        assertErrno(.exists) { try self.engine.volumes.create("data", self.root) }
        assertErrno(.invalid) { try self.engine.volumes.create("bad/name", self.root) }
        try engine.settings.setDefault(.volumeSizeGB, "3", root)
        assertErrno(.invalid) { try self.engine.settings.setDefault(.volumeSizeGB, "0", self.root) }
        assertErrno(.invalid) { try self.engine.settings.setDefault(.volumeBackend, "lvm", self.root) }
        try engine.volumes.create("big", root)
        XCTAssertEqual(try volume("big").sizeGB, 3)

        try engine.volumes.createSnapshot("data", "s1", root)
        assertErrno(.exists) { try self.engine.volumes.createSnapshot("data", "s1", self.root) }
        assertErrno(.busy) { try self.engine.volumes.delete("data", self.root) }
        XCTAssertTrue(engine.events.lines.last { $0.contains("volume.refused data") }?.contains("has snapshots (s1)") ?? false)
        try engine.volumes.setSource("big", VolumeSource(parsing: "snapshot data/s1"), root)
        XCTAssertEqual(try volume("data").snapshots.first?.sourceOf, ["big"])
        assertErrno(.busy) { try self.engine.volumes.deleteSnapshot("data", "s1", self.root) }
        try engine.volumes.delete("big", root)
        try engine.volumes.deleteSnapshot("data", "s1", root)
        v = try volume("data")
        XCTAssertTrue(v.snapshots.isEmpty)
        try engine.volumes.delete("data", root)
        XCTAssertNil(engine.volumes.get("data", root))
        XCTAssertFalse(FileManager.default.fileExists(atPath: volumeFile(v)))
        let left = (try? FileManager.default.contentsOfDirectory(atPath: stateDir + "/volumes")) ?? []
        XCTAssertEqual(left, [], "every volume and snapshot file is gone")
    }

    func testQuotasCountVolumesGigabytesAndSnapshots() throws {
        let alice = try register("alice", in: "web")
        try engine.projects.setQuota("web", .volumes, 2, root)
        try engine.projects.setQuota("web", .gigabytes, 4, root)
        try engine.projects.setQuota("web", .snapshots, 1, root)
        try engine.volumes.create("a", alice)
        try engine.volumes.create("b", alice)
        assertErrno(.quota) { try self.engine.volumes.create("c", alice) }
        XCTAssertNil(engine.volumes.get("c", root), "a refused create leaves nothing")
        try engine.volumes.extend("a", sizeGB: "2", alice)
        // 2 + 1 used of 4: growing b to 3 needs 2 more.
        assertErrno(.quota) { try self.engine.volumes.extend("b", sizeGB: "3", alice) }
        XCTAssertEqual(try volume("b").sizeGB, 1)
        XCTAssertEqual(try volume("b").status, .available)
        // A snapshot of a (2 GiB) would make 5 GiB.
        assertErrno(.quota) { try self.engine.volumes.createSnapshot("a", "s", alice) }
        try engine.volumes.createSnapshot("b", "s", alice)
        assertErrno(.quota) { try self.engine.volumes.createSnapshot("b", "t", alice) }
        let usage = try XCTUnwrap(engine.projects.get("web", alice)).usage
        XCTAssertEqual(usage[.volumes], 2)
        XCTAssertEqual(usage[.gigabytes], 4)
        XCTAssertEqual(usage[.snapshots], 1)
        XCTAssertTrue(engine.events.lines.contains { $0.contains("Quota exceeded for gigabytes") && $0.hasSuffix("project=web") })
        // Another project sees none of it.
        let bob = try register("bob", in: "other")
        XCTAssertTrue(engine.volumes.list(bob).isEmpty)
        assertErrno(.noEntry) { try self.engine.volumes.delete("a", bob) }
        let carol = try register("carol", .reader, in: "web")
        assertErrno(.accessDenied) { try self.engine.volumes.delete("a", carol) }
    }

    func testExtendAndSizesThatMakeNoSense() throws {
        try engine.volumes.create("data", root)
        try engine.volumes.extend("data", sizeGB: "2", root)
        let v = try volume("data")
        XCTAssertEqual(v.sizeGB, 2)
        XCTAssertEqual(v.status, .available)
        XCTAssertEqual(try virtualSize(volumeFile(v)), 2 << 30)
        for bad in ["1", "0", "-3", "two", "1.5", "99999"] {
            assertErrno(.invalid) { try self.engine.volumes.extend("data", sizeGB: bad, self.root) }
        }
        XCTAssertEqual(try volume("data").sizeGB, 2)
        XCTAssertEqual(try virtualSize(volumeFile(v)), 2 << 30)
        assertErrno(.invalid) { _ = try VolumeSource(parsing: "snapshot nosnap") }
        assertErrno(.invalid) { _ = try VolumeSource(parsing: "disk x") }
    }

    func testSourcesFromAnImageASnapshotAndAVolume() throws {
        var bytes = rawDisk()
        bytes.replaceSubrange(0..<12, with: Array("CLOUDFS-IMG\n".utf8))
        try upload("marked", bytes)
        try engine.volumes.create("a", root)
        try engine.volumes.setSource("a", .image("marked"), root)
        XCTAssertEqual(try volume("a").source, .image("marked"))
        XCTAssertEqual(try firstBytes(volumeFile(volume("a")), 12), Array("CLOUDFS-IMG\n".utf8))
        try engine.volumes.createSnapshot("a", "s1", root)
        try engine.volumes.create("b", root)
        try engine.volumes.setSource("b", .snapshot(volume: "a", snapshot: "s1"), root)
        XCTAssertEqual(try firstBytes(volumeFile(volume("b")), 12), Array("CLOUDFS-IMG\n".utf8))
        try engine.volumes.create("c", root)
        try engine.volumes.setSource("c", .volume("a"), root)
        XCTAssertEqual(try firstBytes(volumeFile(volume("c")), 12), Array("CLOUDFS-IMG\n".utf8))
        assertErrno(.noEntry) { try self.engine.volumes.setSource("c", .image("nope"), self.root) }
        assertErrno(.noEntry) { try self.engine.volumes.setSource("c", .snapshot(volume: "a", snapshot: "nope"), self.root) }
        assertErrno(.invalid) { try self.engine.volumes.setSource("c", .volume("c"), self.root) }
        try engine.volumes.extend("a", sizeGB: "2", root)
        assertErrno(.invalid) { try self.engine.volumes.setSource("c", .volume("a"), self.root) }
        XCTAssertEqual(try volume("c").status, .available, "a refused source changes nothing")
    }

    func testAttachExtendSnapshotAndDetachOnARunningDomain() throws {
        let web = try activeInstance("web")
        let other = try activeInstance("other")
        try engine.volumes.create("data", root)
        assertErrno(.noEntry) { try self.engine.volumes.setInstance("data", instance: "nope", self.root) }
        try engine.volumes.setInstance("data", instance: "web", root)
        var v = try volume("data")
        XCTAssertEqual(v.status, .inUse)
        XCTAssertEqual(v.device, "vdb")
        XCTAssertEqual(v.instance, "web")
        XCTAssertNotNil(v.attachedAt)
        XCTAssertEqual(engine.instances.get("web", root)?.volumes, ["vdb": "data"])
        let conn = try hostConnection()
        XCTAssertEqual(try conn.disks(uuid: web.id, persistent: false)["vdb"], volumeFile(v), "hotplugged (AFFECT_LIVE)")
        XCTAssertEqual(try conn.disks(uuid: web.id, persistent: true)["vdb"], volumeFile(v), "and persistent (AFFECT_CONFIG)")
        XCTAssertTrue(engine.instances.get("web", root)?.domainXML.contains(volumeFile(v)) ?? false, "domain.xml follows")

        assertErrno(.exists) { try self.engine.volumes.setInstance("data", instance: "web", self.root) }
        assertErrno(.busy) { try self.engine.volumes.setInstance("data", instance: "other", self.root) }
        assertErrno(.busy) { try self.engine.volumes.delete("data", self.root) }
        assertErrno(.busy) { try self.engine.volumes.setSource("data", .blank, self.root) }

        // Extend while attached: a live block resize.
        try engine.volumes.extend("data", sizeGB: "2", root)
        XCTAssertEqual(try volume("data").status, .inUse)
        XCTAssertEqual(try virtualSize(volumeFile(v)), 2 << 30)
        XCTAssertTrue(engine.events.lines.contains { $0.contains("volume.extended data") && $0.contains("live=yes") })

        // A snapshot of the running guest's disk (a backup job), standalone.
        try engine.volumes.createSnapshot("data", "live", root)
        let snap = try XCTUnwrap(try volume("data").snapshots.first)
        XCTAssertEqual(snap.status, .available)
        XCTAssertEqual(try virtualSize(stateDir + "/volumes/snapshot-\(snap.id).qcow2"), 2 << 30)

        // A second volume goes to the next free device.
        try engine.volumes.create("logs", root)
        try engine.volumes.setInstance("logs", instance: "web", root)
        XCTAssertEqual(try volume("logs").device, "vdc")

        // This guest has no OS: it never releases the device. Nova's retries, then in-use.
        try engine.settings.setConfig(.deviceDetachTimeout, "1", root)
        try engine.settings.setConfig(.deviceDetachAttempts, "2", root)
        try engine.volumes.setInstance("data", instance: "", root)
        XCTAssertEqual(try volume("data").status, .detaching)
        engine.drain()
        v = try volume("data")
        XCTAssertEqual(v.status, .inUse)
        XCTAssertEqual(v.fault, "detach failed: the guest did not release vdb after 2 attempts of 1 s")
        XCTAssertEqual(engine.events.lines.filter { $0.contains("volume.detach_retry data") }.count, 2)
        XCTAssertEqual(try conn.disks(uuid: web.id, persistent: true)["vdb"], volumeFile(v), "back in the definition")

        // Stopped: the detach is the definition's alone, and immediate. (No OS to take the
        // ACPI shutdown request: powered off after 1 s.)
        try engine.settings.setConfig(.shutdownTimeout, "1", root)
        try engine.instances.perform(.power(.stop), on: "other", root)
        XCTAssertEqual(waitStable("other")?.status, .SHUTOFF)
        try engine.volumes.create("cold", root)
        try engine.volumes.setInstance("cold", instance: "other", root)
        XCTAssertEqual(try volume("cold").status, .inUse)
        XCTAssertEqual(try conn.disks(uuid: other.id, persistent: true)["vdb"], volumeFile(try volume("cold")))
        try engine.volumes.detach(instance: "other", device: "vdb", root)
        engine.drain()
        XCTAssertEqual(try volume("cold").status, .available)
        XCTAssertNil(try conn.disks(uuid: other.id, persistent: true)["vdb"])
        XCTAssertTrue(try volume("cold").everAttached)

        // Deleting the instance detaches its volumes and keeps their data.
        try engine.instances.delete("web", root)
        waitGone("web")
        for name in ["data", "logs"] {
            let x = try volume(name)
            XCTAssertEqual(x.status, .available, name)
            XCTAssertEqual(x.instance, "", name)
            XCTAssertTrue(FileManager.default.fileExists(atPath: volumeFile(x)), name)
        }
        try engine.volumes.setInstance("data", instance: "other", root)
        XCTAssertEqual(try volume("data").device, "vdb")
    }

    /// A paused guest takes a live hotplug too (AFFECT_LIVE: QEMU adds the device while
    /// the vCPUs are stopped), as Nova allows attaching to a PAUSED server.
    func testAttachToAPausedGuestIsLive() throws {
        let web = try activeInstance("web")
        try engine.instances.perform(.power(.pause), on: "web", root)
        XCTAssertEqual(waitStable("web")?.status, .PAUSED)
        try engine.volumes.create("data", root)
        try engine.volumes.setInstance("data", instance: "web", root)
        let conn = try hostConnection()
        XCTAssertEqual(try conn.disks(uuid: web.id, persistent: false)["vdb"], volumeFile(try volume("data")))
        XCTAssertEqual(try conn.disks(uuid: web.id, persistent: true)["vdb"], volumeFile(try volume("data")))
        XCTAssertEqual(try volume("data").status, .inUse)
    }

    func testAGuestThatRefusesTheUnplugLeavesTheVolumeInUse() throws {
        _ = try activeInstance("web")
        try engine.volumes.create("data", root)
        try engine.volumes.setInstance("data", instance: "web", root)
        driver.setFault(.detachRefused)
        try engine.volumes.setInstance("data", instance: "", root)
        engine.drain()
        let v = try volume("data")
        XCTAssertEqual(v.status, .inUse)
        XCTAssertEqual(v.fault, "detach failed: injected: the guest refused to release vdb")
        XCTAssertTrue(engine.events.lines.contains { $0.contains("volume.detach_failed data") })
    }

    /// Failed steps end in Cinder's error states with the reason, and those states allow
    /// what Cinder allows (delete; extend again).
    func testFailedStepsEndInCindersErrorStates() throws {
        try engine.volumes.create("data", root)
        let v = try volume("data")
        // The storage vanished behind the cloud's back: extend fails with the reason.
        try FileManager.default.removeItem(atPath: volumeFile(v))
        assertErrno(.io) { try self.engine.volumes.extend("data", sizeGB: "2", self.root) }
        var x = try volume("data")
        XCTAssertEqual(x.status, .errorExtending)
        XCTAssertEqual(x.sizeGB, 1)
        XCTAssertTrue(x.fault.hasPrefix("extend to 2 GiB failed: "), x.fault)
        XCTAssertTrue(engine.events.lines.contains { $0.contains("volume.refused data errno=EIO") })
        assertErrno(.noEntry) { try self.engine.volumes.setInstance("data", instance: "nope", self.root) }
        // Filling from an image whose file is gone ends in error, keeping the volume.
        try engine.volumes.create("filled", root)
        let img = try XCTUnwrap(engine.images.get("blank", root))
        try FileManager.default.removeItem(atPath: img.path)
        assertErrno(.io) { try self.engine.volumes.setSource("filled", .image("blank"), self.root) }
        x = try volume("filled")
        XCTAssertEqual(x.status, .error)
        XCTAssertTrue(x.fault.hasPrefix("filling from image blank failed: "), x.fault)
        // Storage that cannot be removed: error_deleting with the reason; delete again works.
        try engine.volumes.create("stuck", root)
        let stuck = volumeFile(try volume("stuck"))
        try FileManager.default.removeItem(atPath: stuck)
        try FileManager.default.createDirectory(atPath: stuck + "/held", withIntermediateDirectories: true)
        assertErrno(.io) { try self.engine.volumes.delete("stuck", self.root) }
        x = try volume("stuck")
        XCTAssertEqual(x.status, .errorDeleting)
        XCTAssertTrue(x.fault.hasPrefix("delete failed: cannot remove \(stuck)"), x.fault)
        try FileManager.default.removeItem(atPath: stuck)
        try engine.volumes.delete("stuck", root)
        // Both error states may be deleted (Cinder's rule), leaving nothing behind.
        try engine.volumes.delete("data", root)
        try engine.volumes.delete("filled", root)
        XCTAssertTrue(engine.volumes.list(root).isEmpty)
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: stateDir + "/volumes")) ?? [], [])
    }

    /// What a restart does with each transitional state a crash can leave (the rows are
    /// put into those states directly, as a kill -9 between steps leaves them).
    func testARestartLeavesNoVolumeInATransitionalState() throws {
        let web = try activeInstance("web")
        for name in ["attached", "reserved", "grown", "gone", "plain"] { try engine.volumes.create(name, root) }
        try engine.volumes.setInstance("attached", instance: "web", root)
        let attached = try volume("attached"), reserved = try volume("reserved"), grown = try volume("grown")
        engine.drain()
        engine = nil
        try sql("""
            UPDATE volume SET status = 'attaching' WHERE name = 'attached';
            UPDATE volume SET status = 'reserved', instance_id = '\(web.id)', device = 'vdc' WHERE name = 'reserved';
            UPDATE volume SET status = 'extending', target_size_gb = 3, previous_status = 'available' WHERE name = 'grown';
            UPDATE volume SET status = 'deleting' WHERE name = 'gone';
            UPDATE volume SET status = 'creating' WHERE name = 'plain';
            """)
        engine = try makeEngine()
        engine.drain()
        XCTAssertEqual(try volume("attached").status, .inUse, "the definition has it: the attach had happened")
        XCTAssertEqual(try volume("reserved").status, .available, "the definition lacks it: never attached")
        XCTAssertEqual(try volume("reserved").instance, "")
        XCTAssertEqual(try volume("grown").status, .available)
        XCTAssertEqual(try volume("grown").sizeGB, 3)
        XCTAssertEqual(try virtualSize(volumeFile(grown)), 3 << 30)
        XCTAssertNil(engine.volumes.get("gone", root))
        XCTAssertEqual(try volume("plain").status, .available)
        for v in engine.volumes.list(root) { XCTAssertFalse(v.status.isTransitional, "\(v.name) \(v.status)") }
        _ = (attached, reserved)

        // A detach interrupted after the definition lost the disk is finished (or, as this
        // guest never releases it, undone).
        try engine.settings.setConfig(.deviceDetachTimeout, "1", root)
        try engine.settings.setConfig(.deviceDetachAttempts, "1", root)
        engine.drain()
        engine = nil
        try sql("UPDATE volume SET status = 'detaching' WHERE name = 'attached'")
        let conn = try hostConnection()
        try conn.detachDiskPersistent(device: "vdb", uuid: web.id)
        try engine = makeEngine()
        engine.drain()
        let after = try volume("attached")
        XCTAssertEqual(after.status, .inUse, "the guest never released it, so it is in-use again")
        XCTAssertEqual(try conn.disks(uuid: web.id, persistent: true)["vdb"], volumeFile(after), "and the definition says so too")
    }

    func sql(_ statements: String) throws {
        try run(["sqlite3", stateDir + "/cloudfs.db", statements])
    }
}
