import CloudTesting
import Foundation
import XCTest

/// Remote compute hosts: booting from their pools, the console through the stream, cold
/// migration between them, and what is refused there.
final class ComputeNodeMountTests: ComputeNodeTestCase {
    /// mkdir boots on a remote host from its own pool; the console arrives through the
    /// stream; a second instance uses the cached image; cold migration copies the disk to
    /// the other host; rmdir leaves no volume or domain behind. Resize and volume attach
    /// are refused with the reason.
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

        // Refused with the reason: resize and volume attach (their disks are here).
        XCTAssertTrue(fails("echo m1.small > instances/r2/flavor").contains("Operation not supported"))
        XCTAssertTrue(read("events").contains("resize is not supported there yet"), read("events").suffix(600).description)

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
        var boots = 0
        for _ in 0..<180 {
            boots = read("instances/r1/console").components(separatedBy: "CLOUDFS-GUEST-BOOTED").count - 1
            if boots >= 2 { break }
            usleep(500_000)
        }
        XCTAssertEqual(boots, 2, read("instances/r1/console").suffix(400).description)

        // Back to the local host: the overlay is pointed at the image store's file.
        ok("echo enable > hosts/local/ctl && echo 'migrate local' > instances/r2/ctl")
        XCTAssertEqual(ok("timeout 120 cat instances/r2/wait"), "ACTIVE\n", read("instances/r2/fault"))
        XCTAssertEqual(read("instances/r2/host"), "local")
        XCTAssertTrue(ok("qemu-img info -U '\(state)/instances/\(read("instances/r2/id"))/disk'").contains("\(state)/images/"))

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
        register("cfsta")
        ok("echo disable > hosts/local/ctl")
        uploadGuest()
        ok("mkdir instances/r1")
        XCTAssertEqual(ok("timeout 120 cat instances/r1/wait"), "ACTIVE\n", read("instances/r1/fault"))
        let image = read("images.d/tiny/id")
        XCTAssertFalse(virsh("cfsta", "vol-delete image-\(image) --pool \(pool())").isEmpty)
        unmount()
        try mount()
        ok("mkdir instances/r2")
        XCTAssertEqual(ok("timeout 120 cat instances/r2/wait"), "ACTIVE\n", read("instances/r2/fault"))
        XCTAssertEqual(cachedCount("cfsta"), 4, "the root image was uploaded again")
        XCTAssertTrue(volumes("cfsta").contains("image-\(image)"))
    }
}
