import CloudTesting
import Foundation
import XCTest

/// Remote compute hosts: booting from their pools, the console through the stream, cold
/// migration between them, and what is refused there.
final class ComputeNodeMountTests: ComputeNodeTestCase {
    /// mkdir boots on a remote host from its own pool; the console arrives through the
    /// stream; a second instance uses the cached image; a resize moves the disk through
    /// here to the other host and back on revert, and grows it on its own host when
    /// confirmed; cold migration copies the disk to the other host; rmdir leaves no volume
    /// or domain behind.
    func testInstancesBootOnRemoteHostsFromTheirPools() throws {
        register("cfsta")
        ok("echo disable > hosts/local/ctl")
        uploadGuest()
        ok("mkdir instances/r1")
        XCTAssertEqual(ok("timeout 120 cat instances/r1/wait"), "ACTIVE\n", read("instances/r1/fault"))
        XCTAssertEqual(read("instances/r1/host"), "cfsta")
        let id = read("instances/r1/id")
        XCTAssertEqual(cachedCount("cfsta"), 3, "kernel, ramdisk and root image uploaded once each: \(read("events"))")
        XCTAssertEqual(read("hosts/cfsta/images"), "initrd\ntiny\nvmlinuz")
        XCTAssertEqual(read("hosts/local/storage"), "shared")
        // Every path the domain names is in the host's pool, none in the controller's state.
        let xml = read("instances/r1/domain.xml")
        XCTAssertTrue(xml.contains("/var/lib/libvirt/images/\(pool())/\(id).disk"), xml)
        XCTAssertFalse(xml.contains(work), "the remote domain names a controller path: \(xml)")
        XCTAssertTrue(waitForConsole("r1").contains("CLOUDFS-GUEST-BOOTED"), "console: \(read("instances/r1/console").suffix(400))")
        let vols = Set(volumes("cfsta"))
        XCTAssertTrue(vols.isSuperset(of: ["\(id).disk", "\(id).config"]), "\(vols)")
        XCTAssertEqual(vols.filter { $0.hasPrefix("image-") }.count, 3, "\(vols)")

        // The second host: the image cache weigher prefers the host holding the image.
        register("cfstb")
        ok("echo 100 > scheduler/image_cache_weight_multiplier")
        ok("mkdir instances/r2")
        XCTAssertEqual(ok("timeout 120 cat instances/r2/wait"), "ACTIVE\n", read("instances/r2/fault"))
        XCTAssertEqual(read("instances/r2/host"), "cfsta", read("scheduler/last"))
        XCTAssertEqual(cachedCount("cfsta"), 3, "no second upload")

        // Resize to the other remote host (its own is disabled): the old disk stays on
        // cfsta until the confirm; the revert brings the instance back to it, as it was.
        let id2 = read("instances/r2/id")
        let small = Int64(20) << 30
        XCTAssertEqual(waitForBoots("r2", 1), 1)
        ok("echo 2 > config/shutdown_timeout")   // the tiny guest ignores ACPI: no 30 s waits
        ok("echo disable > hosts/cfsta/ctl && echo m1.small > instances/r2/flavor")
        XCTAssertEqual(ok("timeout 120 cat instances/r2/wait"), "VERIFY_RESIZE\n", read("instances/r2/fault"))
        XCTAssertEqual(read("instances/r2/host"), "cfstb")
        XCTAssertEqual(capacity("cfstb", "\(id2).disk"), small)
        XCTAssertTrue(volumes("cfsta").contains("\(id2).disk"), "the old disk stays until the confirm")
        XCTAssertEqual(waitForBoots("r2", 2), 2, "the resized guest boots on cfstb: \(read("instances/r2/console").suffix(600)) \(read("events").suffix(3000))")
        ok("echo revert-resize > instances/r2/ctl")
        XCTAssertEqual(ok("timeout 120 cat instances/r2/wait"), "ACTIVE\n", read("instances/r2/fault"))
        XCTAssertEqual(read("instances/r2/host"), "cfsta")
        XCTAssertEqual(read("instances/r2/flavor"), "m1.nano")
        XCTAssertFalse(volumes("cfstb").contains("\(id2).disk"), "the grown disk left cfstb")
        XCTAssertLessThan(capacity("cfsta", "\(id2).disk"), small)
        XCTAssertTrue(virsh("cfsta", "list --uuid").contains(id2))
        XCTAssertFalse(virsh("cfstb", "list --all --uuid").contains(id2))
        XCTAssertEqual(waitForBoots("r2", 3), 3, "the reverted guest boots on cfsta again")
        // On the same remote host, confirmed: the grown disk replaces the old one there.
        ok("echo enable > hosts/cfsta/ctl && echo disable > hosts/cfstb/ctl && echo m1.small > instances/r2/flavor")
        XCTAssertEqual(ok("timeout 120 cat instances/r2/wait"), "VERIFY_RESIZE\n", read("instances/r2/fault"))
        XCTAssertEqual(read("instances/r2/host"), "cfsta")
        XCTAssertEqual(capacity("cfsta", "\(id2).disk"), small)
        ok("echo confirm-resize > instances/r2/ctl && echo enable > hosts/cfstb/ctl")
        XCTAssertEqual(ok("timeout 120 cat instances/r2/wait"), "ACTIVE\n", read("instances/r2/fault"))
        XCTAssertEqual(read("instances/r2/flavor"), "m1.small")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(state)/instances/\(id2)/disk.resize"), "the backup went")
        XCTAssertEqual(waitForBoots("r2", 4), 4, "one boot per resize and revert")

        // Cold migration to the other remote host copies the disk over its cached image.
        ok("echo 'migrate cfstb' > instances/r1/ctl")
        XCTAssertEqual(ok("timeout 120 cat instances/r1/wait"), "ACTIVE\n", read("instances/r1/fault"))
        XCTAssertEqual(read("instances/r1/host"), "cfstb", read("instances/r1/fault"))
        XCTAssertEqual(cachedCount("cfstb"), 3)
        XCTAssertFalse(volumes("cfsta").contains("\(id).disk"), "the source's copy is dropped")
        XCTAssertTrue(volumes("cfstb").contains("\(id).disk"))
        XCTAssertFalse(virsh("cfsta", "list --all --uuid").contains(id))
        XCTAssertTrue(virsh("cfstb", "list --uuid").contains(id))
        // The console follows the guest to its new host (a cold migration boots it again).
        XCTAssertEqual(waitForBoots("r1", 2), 2, read("instances/r1/console").suffix(400).description)

        // Back to the local host: the overlay is pointed at the image store's file.
        ok("echo enable > hosts/local/ctl && echo 'migrate local' > instances/r2/ctl")
        XCTAssertEqual(ok("timeout 120 cat instances/r2/wait"), "ACTIVE\n", read("instances/r2/fault"))
        XCTAssertEqual(read("instances/r2/host"), "local")
        XCTAssertTrue(ok("qemu-img info -U '\(state)/instances/\(read("instances/r2/id"))/disk'").contains("\(state)/images/"))

        // A resize from this machine to a remote host, reverted: the local disk comes back as it was.
        XCTAssertEqual(waitForBoots("r2", 5), 5)
        ok("echo disable > hosts/local/ctl && echo m1.medium > instances/r2/flavor")
        XCTAssertEqual(ok("timeout 120 cat instances/r2/wait"), "VERIFY_RESIZE\n", read("instances/r2/fault"))
        let far = read("instances/r2/host")
        XCTAssertNotEqual(far, "local")
        XCTAssertEqual(capacity(far, "\(id2).disk"), Int64(40) << 30)
        ok("echo revert-resize > instances/r2/ctl && echo enable > hosts/local/ctl")
        XCTAssertEqual(ok("timeout 120 cat instances/r2/wait"), "ACTIVE\n", read("instances/r2/fault"))
        XCTAssertEqual(read("instances/r2/host"), "local")
        XCTAssertFalse(volumes(far).contains("\(id2).disk"), "the grown disk left \(far)")
        XCTAssertTrue(ok("qemu-img info -U '\(state)/instances/\(id2)/disk'").contains("virtual size: 20 GiB"))

        ok("rmdir instances/r1 instances/r2")
        for _ in 0..<100 where !ok("ls instances").isEmpty { usleep(100_000) }
        for node in ["cfsta", "cfstb"] {
            XCTAssertEqual(volumes(node).filter { !$0.hasPrefix("image-") }, [], "instance volumes left on \(node)")
            XCTAssertFalse(virsh(node, "list --all --name").contains("cloudfs-"), "a domain left on \(node)")
        }
    }

    /// A cached image whose volume disappeared from the host (a host rebuilt, a volume
    /// deleted by hand) is uploaded again after a restart instead of failing the build.
    func testAMissingCachedImageIsUploadedAgain() throws {
        bootR1OnCfsta()
        let image = read("images.d/tiny/id")
        XCTAssertFalse(virsh("cfsta", "vol-delete image-\(image) --pool \(pool())").isEmpty)
        unmount()
        try mount()
        ok("mkdir instances/r2")
        XCTAssertEqual(ok("timeout 120 cat instances/r2/wait"), "ACTIVE\n", read("instances/r2/fault"))
        XCTAssertEqual(cachedCount("cfsta"), 4, "the root image was uploaded again")
        XCTAssertTrue(volumes("cfsta").contains("image-\(image)"))
    }

    /// kill -9 in the middle of a resize with remote hosts: after the restart the resize
    /// finishes from its recorded step, and its revert finds the old disk. Across hosts the
    /// old disk was never touched; on one host the grown disk had already replaced it, so
    /// the revert uploads the backup kept here.
    func testAResizeWithRemoteHostsSurvivesKillNine() throws {
        register("cfstb")
        ok("echo disable > hosts/cfstb/ctl && echo 2 > config/shutdown_timeout")
        bootR1OnCfsta()
        let id = read("instances/r1/id")
        let before = capacity("cfsta", "\(id).disk")
        // (disabled host, expected host, crash point)
        for (off, dest, point) in [("cfsta", "cfstb", "resize.disk"), ("cfstb", "cfsta", "resize.disk"), ("cfstb", "cfsta", "resize.spawned")] {
            ok("echo enable > hosts/cfsta/ctl && echo enable > hosts/cfstb/ctl && echo disable > hosts/\(off)/ctl")
            unmount()
            try mount(env: "CLOUDFS_CRASH_AT=\(point)")
            ok("echo m1.small > instances/r1/flavor")
            XCTAssertTrue(daemonDied(), "the daemon reached \(point)")
            try mount()
            XCTAssertEqual(ok("timeout 120 cat instances/r1/wait"), "VERIFY_RESIZE\n", "\(point) → \(dest): \(read("instances/r1/fault"))")
            XCTAssertEqual(read("instances/r1/host"), dest, point)
            XCTAssertEqual(capacity(dest, "\(id).disk"), Int64(20) << 30, point)
            ok("echo revert-resize > instances/r1/ctl")
            XCTAssertEqual(ok("timeout 120 cat instances/r1/wait"), "ACTIVE\n", "\(point): \(read("instances/r1/fault"))")
            XCTAssertEqual(read("instances/r1/host"), "cfsta", point)
            XCTAssertEqual(capacity("cfsta", "\(id).disk"), before, "\(point): the old disk is back")
            XCTAssertFalse(volumes("cfstb").contains("\(id).disk"), point)
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(state)/instances/\(id)/disk.resize"), point)
            XCTAssertTrue(virsh("cfsta", "list --uuid").contains(id), point)
        }
    }

    /// Evacuate from a dead remote host (Nova's evacuate without shared storage): the guest
    /// is rebuilt on the other remote host on a fresh disk over that host's copy of the
    /// image, with its address, and boots there.
    func testEvacuateFromADeadRemoteHostRebuildsOnTheOther() throws {
        register("cfstb")
        ok("echo disable > hosts/cfstb/ctl")
        bootR1OnCfsta()
        let (id, ip) = (read("instances/r1/id"), read("instances/r1/ip"))
        XCTAssertEqual(waitForBoots("r1", 1), 1)
        ok("echo enable > hosts/cfstb/ctl")
        XCTAssertTrue(fails("echo evacuate > hosts/cfsta/ctl").contains("busy"), "evacuate is refused while cfsta is up")

        stopComputeHost("cfsta")
        for _ in 0..<60 where read("hosts/cfsta/state") != "down" { usleep(500_000) }
        XCTAssertEqual(read("hosts/cfsta/state"), "down", read("hosts/cfsta/fault"))
        ok("echo evacuate > hosts/cfsta/ctl")
        for _ in 0..<240 where !(read("instances/r1/host") == "cfstb" && read("instances/r1/status") == "ACTIVE") { usleep(500_000) }
        XCTAssertEqual(read("instances/r1/host"), "cfstb", read("instances/r1/fault"))
        XCTAssertEqual(read("instances/r1/status"), "ACTIVE", read("instances/r1/fault"))
        XCTAssertEqual(read("instances/r1/ip"), ip, "the address goes with the guest")
        XCTAssertTrue(read("events").contains("instance.evacuated r1 from=cfsta"), read("events").suffix(800).description)
        XCTAssertEqual(cachedCount("cfstb"), 3, "kernel, ramdisk and root image uploaded to cfstb")
        XCTAssertTrue(volumes("cfstb").contains("\(id).disk"))
        XCTAssertTrue(virsh("cfstb", "list --uuid").contains(id))
        XCTAssertEqual(waitForBoots("r1", 2), 2, "the rebuilt guest boots on cfstb: \(read("instances/r1/console").suffix(400))")
    }

    /// Registers cfsta, disables this machine, and builds the tiny guest r1 there.
    func bootR1OnCfsta() {
        register("cfsta")
        ok("echo disable > hosts/local/ctl")
        uploadGuest()
        ok("mkdir instances/r1")
        XCTAssertEqual(ok("timeout 120 cat instances/r1/wait"), "ACTIVE\n", read("instances/r1/fault"))
    }

    /// The guest's boots on its console, once it shows `count` (or after 90 s).
    func waitForBoots(_ name: String, _ count: Int) -> Int {
        var boots = 0
        for _ in 0..<180 {
            boots = read("instances/\(name)/console").components(separatedBy: "CLOUDFS-GUEST-BOOTED").count - 1
            if boots >= count { break }
            usleep(500_000)
        }
        return boots
    }

    /// A volume's capacity in bytes on `node` (`virsh vol-info --bytes`).
    func capacity(_ node: String, _ volume: String) -> Int64 {
        let info = virsh(node, "vol-info --bytes --pool \(pool(node)) \(volume)")
        let line = info.split(separator: "\n").first { $0.hasPrefix("Capacity:") } ?? ""
        return Int64(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
    }
}
