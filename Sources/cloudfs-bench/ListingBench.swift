import Foundation

/// `ls -l` and `cat status` over many instances vs the same commands on a plain directory tree.
struct ListingBench {
    let rig: Rig
    let count: Int
    let reproduce: String

    func run() throws {
        let emptyRSS = rig.daemonRSS()
        let t0 = now()
        try timed("cd '\(rig.mnt)/instances' && for i in $(seq 1 \(count)); do mkdir i$i; done")
        let created = now() - t0
        // Through xargs: 100,000 paths are past the kernel's limit for one exec.
        try timed("cd '\(rig.mnt)/instances' && while printf '%s\\n' */status | xargs cat 2>/dev/null | grep -q BUILD; do sleep 0.2; done")
        let allActive = now() - t0
        let plain = rig.work + "/plain"
        try timed("mkdir -p '\(plain)' && cd '\(plain)' && for i in $(seq 1 \(count)); do mkdir i$i; echo ACTIVE > i$i/status; done")
        func best(_ s: String) throws -> Double { try (0..<5).map { _ in try timed(s) }.min()! }
        let lsCloud = try best("ls -l '\(rig.mnt)/instances' > /dev/null")
        let lsPlain = try best("ls -l '\(plain)' > /dev/null")
        let catCloud = try best("printf '%s\\n' '\(rig.mnt)'/instances/*/status | xargs cat > /dev/null")
        let catPlain = try best("printf '%s\\n' '\(plain)'/*/status | xargs cat > /dev/null")
        // The floor of FUSE: the same commands on a file system of the same shape that does
        // no work (`FuseFloor`). What cloudfs adds is its ratio to this; what is left of the
        // ratio to a plain directory is the kernel's round trips.
        let floor = try FuseFloor(mountpoint: rig.work + "/fuse-floor", count: count)
        defer { floor.stop() }
        let lsFloor = try best("ls -l '\(floor.instances)' > /dev/null")
        let catFloor = try best("printf '%s\\n' '\(floor.instances)'/*/status | xargs cat > /dev/null")
        // And what the kernel could do without the OPEN round trip, which the cloud cannot
        // give up (it is connection-wide, and `wait`, `ctl` and consoles need their opens).
        let bare = try FuseFloor(mountpoint: rig.work + "/fuse-floor-no-open", count: count, noOpen: true)
        defer { bare.stop() }
        let catBare = try best("printf '%s\\n' '\(bare.instances)'/*/status | xargs cat > /dev/null")
        let active = try String(contentsOfFile: "\(rig.mnt)/hosts/node0/instances", encoding: .utf8).split(separator: "\n").count
        let fullRSS = rig.daemonRSS()
        print("3. \(count) instances on 4 test:/// hosts (\(String(format: "%.1f", created)) s to mkdir all, \(String(format: "%.1f", allActive)) s until all ACTIVE; node0 has \(active))")
        report("   ls -l instances/", String(format: "%8.1f ms", lsCloud * 1000), String(format: "plain dir %.1f ms, %.1fx", lsPlain * 1000, lsCloud / lsPlain))
        report("   cat instances/*/status (through xargs)", String(format: "%8.1f ms", catCloud * 1000), String(format: "plain dir %.1f ms, %.1fx", catPlain * 1000, catCloud / catPlain))
        report("   FUSE file system doing no work: ls -l", String(format: "%8.1f ms", lsFloor * 1000),
               String(format: "%.1fx plain; cloudfs %.1fx this", lsFloor / lsPlain, lsCloud / lsFloor))
        report("   FUSE file system doing no work: cat */status", String(format: "%8.1f ms", catFloor * 1000),
               String(format: "%.1fx plain; cloudfs %.1fx this", catFloor / catPlain, catCloud / catFloor))
        report("   ... and opening files without a round trip: cat", String(format: "%8.1f ms", catBare * 1000),
               String(format: "%.1fx plain (FUSE_NO_OPEN_SUPPORT: connection-wide)", catBare / catPlain))
        if let e = emptyRSS, let f = fullRSS {
            report("   daemon memory (VmRSS)", String(format: "%8.1f MiB", Double(f) / 1024),
                   String(format: "%.1f KiB per instance over the empty cloud's %.1f MiB", Double(f - e) / Double(count), Double(e) / 1024))
        }
        print("   reproduce: \(reproduce)")
        print("")
    }
}
