import Foundation

/// Live migration of the tiny guest between two remote hosts (scripts/compute-host.sh)
/// through the tree (`echo live-migrate HOST > ctl; cat wait`) vs the same libvirt work done
/// with virsh on a guest of the same shape in the same run: the destination's overlay
/// created over its copy of the image, the config drive uploaded, then `virsh migrate
/// --live --p2p --persistent --undefinesource --copy-storage-inc`.
struct LiveMigrationBench {
    let work: String
    let guestDir: String
    let rounds: Int
    let reproduce: String

    private var script: String {
        // .build/<triple>/release/cloudfs-bench → the package root.
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        return bin.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/compute-host.sh").path
    }

    func run() throws {
        guard getuid() == 0 else { print("8. live migration: skipped (needs root for the hosts' namespaces)\n"); return }
        // Stopped last: the rig deletes its instances while the hosts still answer.
        defer { _ = try? timed("'\(script)' stop cfsba >/dev/null 2>&1; '\(script)' stop cfsbb >/dev/null 2>&1") }
        let rig = try Rig(work: work, hosts: 0, extraMountArgs: "")
        defer { rig.tearDown() }
        let a = try startHost("cfsba", 41), b = try startHost("cfsbb", 42)
        let m = rig.mnt
        try timed("""
            cd '\(m)' && mkdir hosts/a hosts/b && echo '\(a)' > hosts/a/uri && echo '\(b)' > hosts/b/uri &&
            echo disable > hosts/local/ctl && echo disable > hosts/b/ctl &&
            cp '\(guestDir)/vmlinuz' images/vmlinuz && cp '\(guestDir)/initramfs.gz' images/initrd &&
            qemu-img create -q -f qcow2 '\(work)/root.qcow2' 64M && cp '\(work)/root.qcow2' images/tiny &&
            echo vmlinuz > images.d/tiny/properties/kernel && echo initrd > images.d/tiny/properties/ramdisk &&
            echo console=ttyS0 > images.d/tiny/properties/cmdline && echo tiny > defaults/image &&
            mkdir instances/lm && [ "$(timeout 120 cat instances/lm/wait)" = ACTIVE ] && echo enable > hosts/b/ctl
            """)
        try baselineGuest(a, b)
        var cloud: [Double] = [], plain: [Double] = []
        for i in 0..<rounds {
            let (from, to) = i % 2 == 0 ? (a, b) : (b, a)
            plain.append(try timed(virshMigration(from: from, to: to)))
            cloud.append(try timed("cd '\(m)' && echo 'live-migrate \(i % 2 == 0 ? "b" : "a")' > instances/lm/ctl && [ \"$(timeout 120 cat instances/lm/wait)\" = ACTIVE ] && [ \"$(cat instances/lm/host)\" = \(i % 2 == 0 ? "b" : "a") ]"))
        }
        let (p, c) = (median(plain), median(cloud))
        print("8. live migration of the tiny guest (128 MiB, block migration of its overlay) between two hosts")
        report("   virsh: overlay + drive + migrate --live --p2p (baseline)", String(format: "%7.0f ms", p * 1000), "median of \(rounds)")
        report("   echo live-migrate HOST > ctl; cat wait", String(format: "%7.0f ms", c * 1000), "median of \(rounds)")
        report("   ratio (cloudfs time / baseline time)", String(format: "%7.2fx", c / p), "aim ≤ 1.3×")
        print("   reproduce: \(reproduce)\n")
    }

    private func startHost(_ name: String, _ index: Int) throws -> String {
        let file = "\(work)/\(name).uri"
        try timed("'\(script)' start \(name) \(index) '\(work)' > '\(file)' 2>/dev/null")
        defer { unlink(file) }
        return (try String(contentsOfFile: file, encoding: .utf8)).split(separator: "\n").last.map(String.init) ?? ""
    }

    /// A domain of the tiny guest's shape on `host` made with virsh alone: kernel, initrd
    /// and a qcow2 base uploaded into a pool `bench` on both hosts, an overlay, a config
    /// drive, started.
    private func baselineGuest(_ host: String, _ other: String) throws {
        let dir = "/var/lib/libvirt/images/bench"
        try timed("genisoimage -quiet -V config-2 -o '\(work)/cfg.iso' '\(guestDir)/vmlinuz' 2>/dev/null || head -c 1M /dev/zero > '\(work)/cfg.iso'")
        for uri in [host, other] {
            try timed("""
                V="virsh -q -c \(uri)"; $V pool-define-as bench dir --target \(dir) >/dev/null && $V pool-build bench >/dev/null &&
                $V pool-start bench >/dev/null &&
                for f in vmlinuz:'\(guestDir)/vmlinuz' initrd:'\(guestDir)/initramfs.gz' base:'\(work)/root.qcow2'; do
                  n=${f%%:*}; p=${f#*:}; $V vol-create-as bench $n $(stat -c %s "$p") --format raw >/dev/null && $V vol-upload $n "$p" --pool bench || exit 1
                done
                """)
        }
        try timed("""
            V="virsh -q -c \(host)"; \(overlayAndDrive(host)) &&
            cat > '\(work)/base.xml' <<X
            <domain type='qemu'><name>bench-lm</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
            <os><type arch='x86_64' machine='pc'>hvm</type><kernel>\(dir)/vmlinuz</kernel><initrd>\(dir)/initrd</initrd><cmdline>console=ttyS0</cmdline></os>
            <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='\(dir)/lm.disk'/><target dev='vda' bus='virtio'/></disk>
            <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='\(dir)/lm.config'/><target dev='hdc' bus='ide'/><readonly/></disk>
            <interface type='user'><model type='virtio'/></interface>
            <serial type='pty'><target port='0'/></serial><console type='pty'><target type='serial' port='0'/></console></devices></domain>
            X
            $V define '\(work)/base.xml' >/dev/null && $V start bench-lm >/dev/null && sleep 10
            """)
    }

    /// The destination's overlay and config drive (what the cloud's pre-migration does).
    private func overlayAndDrive(_ uri: String) -> String {
        let dir = "/var/lib/libvirt/images/bench"
        return """
            printf "<volume><name>lm.disk</name><capacity unit='bytes'>67108864</capacity><target><format type='qcow2'/><compat>1.1</compat></target><backingStore><path>\(dir)/base</path><format type='qcow2'/></backingStore></volume>" > '\(work)/ov.xml' &&
            virsh -q -c \(uri) vol-create bench '\(work)/ov.xml' >/dev/null &&
            virsh -q -c \(uri) vol-create-as bench lm.config $(stat -c %s '\(work)/cfg.iso') --format raw >/dev/null &&
            virsh -q -c \(uri) vol-upload lm.config '\(work)/cfg.iso' --pool bench
            """
    }

    private func virshMigration(from: String, to: String) -> String {
        """
        \(overlayAndDrive(to)) &&
        virsh -q -c \(from) migrate --live --p2p --persistent --undefinesource --copy-storage-inc bench-lm \(to) &&
        virsh -q -c \(from) vol-delete lm.disk --pool bench >/dev/null && virsh -q -c \(from) vol-delete lm.config --pool bench >/dev/null
        """
    }
}
