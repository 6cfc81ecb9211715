import ArgumentParser
import CloudCore
import Foundation
import LibvirtCompute

/// Attach + detach of a volume to a running guest (the tiny guest, embedded QEMU, TCG):
/// `echo g > volumes/v/instance`, the guest seeing the disk, `echo > volumes/v/instance`
/// and `status` back to available, vs the same libvirt calls made directly in this process
/// (virDomainAttachDeviceFlags LIVE|CONFIG; detach from the definition, then live, waiting
/// for DeviceRemoved) on a guest of its own, in the same run. Both wait for the guest's
/// console to show the new disk before detaching (an unplug request a guest gets before it
/// has taken the plug is lost).
struct VolumeBench {
    let work: String
    let guestDir: String
    let cycles: Int
    let reproduce: String

    func run() throws {
        guard FileManager.default.fileExists(atPath: guestDir + "/vmlinuz") else {
            throw ValidationError("no tiny guest in \(guestDir) (examples/make-tiny-guest.sh \(guestDir))")
        }
        let rig = try Rig(work: work, hosts: 0, extraMountArgs: "--virt-type qemu")
        defer { rig.tearDown() }
        let m = rig.mnt
        try timed("cp '\(guestDir)/vmlinuz' '\(m)/images/vmlinuz' && cp '\(guestDir)/initramfs.gz' '\(m)/images/initrd' && " +
                  "qemu-img create -q -f qcow2 '\(work)/root.qcow2' 64M && cp '\(work)/root.qcow2' '\(m)/images/tiny' && " +
                  "echo vmlinuz > '\(m)/images.d/tiny/properties/kernel' && echo initrd > '\(m)/images.d/tiny/properties/ramdisk' && " +
                  "echo tiny > '\(m)/defaults/image' && mkdir '\(m)/instances/g' && [ \"$(cat '\(m)/instances/g/wait')\" = ACTIVE ] && " +
                  "mkdir '\(m)/volumes/v'")
        let id = try String(contentsOfFile: m + "/instances/g/id", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let treeConsole = rig.state + "/instances/\(id)/console.log"
        try waitForLine(treeConsole, "CLOUDFS-GUEST-BOOTED", count: 1)

        // cloudfs: attach, the guest sees it, detach, available again.
        var attachCloud: [Double] = [], cycleCloud: [Double] = []
        for i in 1...cycles + 1 {
            let t0 = now()
            try timed("echo g > '\(m)/volumes/v/instance'")
            let attached = now() - t0
            try waitForLine(treeConsole, "CLOUDFS-DISK-ADDED", count: i)
            try timed("echo > '\(m)/volumes/v/instance' && while [ \"$(cat '\(m)/volumes/v/status')\" != available ]; do :; done")
            if i > 1 { attachCloud.append(attached); cycleCloud.append(now() - t0) }   // the first is a warm-up
        }

        // Baseline: the same calls on this process's own embedded driver and guest.
        let root = work + "/embed"
        let driver = LibvirtDriver(virtType: .qemu, stateDir: work)
        let conn = try driver.connect(uri: "qemu:///embed?root=\(root)")
        let uuid = UUID().uuidString.lowercased()
        let console = work + "/base-console.log"
        try timed("qemu-img create -q -f qcow2 '\(work)/base-root.qcow2' 64M && qemu-img create -q -f qcow2 '\(work)/base-vol.qcow2' 1G")
        let spec = DomainSpec(domainName: "bench-vol-\(uuid)", uuid: uuid, vcpus: 1, ramMB: 128,
                              disks: [DiskSpec(path: work + "/base-root.qcow2", device: "vda")],
                              kernelPath: guestDir + "/vmlinuz", initrdPath: guestDir + "/initramfs.gz",
                              cmdline: "console=ttyS0", consolePath: console)
        _ = try conn.spawn(spec)
        defer { try? conn.destroy(uuid: uuid) }
        try waitForLine(console, "CLOUDFS-GUEST-BOOTED", count: 1)
        let disk = DiskSpec(path: work + "/base-vol.qcow2", device: "vdb")
        var attachBase: [Double] = [], cycleBase: [Double] = []
        for i in 1...cycles + 1 {
            let t0 = now()
            try conn.attachDisk(disk, uuid: uuid, live: true)
            let attached = now() - t0
            try waitForLine(console, "CLOUDFS-DISK-ADDED", count: i)
            try conn.detachDiskPersistent(device: "vdb", uuid: uuid)
            guard try conn.detachDiskLive(device: "vdb", uuid: uuid, timeout: 20) == .removed else {
                throw ValidationError("the baseline guest did not release vdb")
            }
            if i > 1 { attachBase.append(attached); cycleBase.append(now() - t0) }
        }

        print("10. volumes: attach + detach of a volume to a running tiny guest (embedded QEMU, TCG), \(cycles) cycles")
        report("   libvirt attach (LIVE|CONFIG) alone, median (baseline)", String(format: "%8.1f ms", median(attachBase) * 1000))
        report("   echo g > volumes/v/instance, median", String(format: "%8.1f ms", median(attachCloud) * 1000),
               String(format: "%.1fx", median(attachCloud) / median(attachBase)))
        report("   attach, guest sees it, detach (DeviceRemoved): libvirt", String(format: "%8.1f ms", median(cycleBase) * 1000),
               String(format: "p90 %.1f ms", percentile(cycleBase, 0.9) * 1000))
        report("   the same through the tree (status available)", String(format: "%8.1f ms", median(cycleCloud) * 1000),
               String(format: "p90 %.1f ms", percentile(cycleCloud, 0.9) * 1000))
        report("   ratio (cloudfs cycle / libvirt cycle, medians)", String(format: "%8.2fx", median(cycleCloud) / median(cycleBase)))
        print("   reproduce: \(reproduce)")
        print("")
    }

    /// Waits until `path` holds `count` lines containing `marker` (the guest's console).
    func waitForLine(_ path: String, _ marker: String, count: Int, timeout: Double = 120) throws {
        let deadline = now() + timeout
        while now() < deadline {
            let text = (try? String(contentsOfFile: path, encoding: .isoLatin1)) ?? ""
            if text.components(separatedBy: marker).count - 1 >= count { return }
            usleep(5_000)
        }
        throw ValidationError("\(path) never showed \(count) × \(marker)")
    }
}
