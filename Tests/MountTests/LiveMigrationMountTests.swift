import CloudTesting
import Foundation
import XCTest

/// Live migration between two remote hosts (`echo live-migrate [HOST] > ctl`): the tiny
/// guest prints a counter on its console (`cloudfs.ticks=1`) that must keep counting in
/// the same boot; abort, the completion timeout and a refusing destination leave it
/// running where it was; kill -9 of the controller mid-migration settles on one host. A
/// completed migration (with its network) is TenantNetworkMountTests'.
final class LiveMigrationMountTests: ComputeNodeTestCase {
    /// The guest booted with mkdir on cfsta (the other hosts disabled), counting.
    private func bootCountingGuest(_ name: String = "lm") {
        register("cfsta")
        register("cfstb")
        ok("echo disable > hosts/local/ctl && echo disable > hosts/cfstb/ctl")
        uploadGuest()
        ok("echo 'console=ttyS0 cloudfs.ticks=1' > images.d/tiny/properties/cmdline")
        ok("mkdir instances/\(name)")
        XCTAssertEqual(ok("timeout 120 cat instances/\(name)/wait"), "ACTIVE\n", read("instances/\(name)/fault"))
        XCTAssertEqual(read("instances/\(name)/host"), "cfsta")
        XCTAssertGreaterThan(waitForTick(name, above: 2), 2)
        ok("echo enable > hosts/cfstb/ctl")
    }

    /// The guest's ticks so far: (count, boot ids seen).
    private func ticks(_ name: String) -> (last: Int, boots: Set<String>) {
        var last = 0
        var boots = Set<String>()
        for line in read("instances/\(name)/console").split(whereSeparator: \.isNewline) where line.hasPrefix("CLOUDFS-TICK ") {
            let f = line.split(separator: " ")
            guard f.count >= 3, let n = Int(f[1]) else { continue }
            last = max(last, n)
            boots.insert(String(f[2]))
        }
        return (last, boots)
    }

    @discardableResult
    private func waitForTick(_ name: String, above n: Int) -> Int {
        for _ in 0..<240 {
            let t = ticks(name).last
            if t > n { return t }
            usleep(500_000)
        }
        return ticks(name).last
    }

    private func waitForMigrationRunning(_ name: String) {
        for _ in 0..<200 {
            let m = read("instances/\(name)/migration")
            if m.hasPrefix("status running"), !m.contains("memory_total_bytes 0\n") { return }
            usleep(100_000)
        }
        XCTFail("no running migration seen: \(read("instances/\(name)/migration"))")
    }

    /// The `mode` line a migration from these hosts shows: TCG guests under QEMU before 9.0
    /// move paused (that QEMU loses their writes in a live move), others live.
    private var expectedMode: String {
        let v = sh("qemu-system-x86_64 --version").out
        let major = v.range(of: "version ").flatMap { r in Int(v[r.upperBound...].prefix { $0.isNumber }) } ?? 0
        return major < 9 && ProcessInfo.processInfo.environment["CLOUDFS_VIRT_TYPE"] == "qemu" ? "mode paused (QEMU " : "mode live\n"
    }

    /// Where the instance's domain is, by host.
    private func domainHosts(_ id: String) -> [String] {
        ["cfsta", "cfstb"].filter { virsh($0, "list --all --uuid").contains(id) }
    }

    /// Abort, the completion timeout and a refusing destination, one after the other on
    /// one guest (one boot keeps the suite short): each leaves it running on its source,
    /// counting in the same boot, with the destination's claim and copy gone.
    func testAbortTimeoutAndARefusingDestinationLeaveTheGuestWhereItWas() throws {
        bootCountingGuest()
        let id = read("instances/lm/id")
        func stayed(_ why: String) {
            XCTAssertEqual(ok("timeout 120 cat instances/lm/wait"), "ACTIVE\n")
            XCTAssertEqual(read("instances/lm/host"), "cfsta", why)
            XCTAssertEqual(domainHosts(id), ["cfsta"], why)
            XCTAssertEqual(volumes("cfstb").filter { $0.hasPrefix(id) }, [], "the destination's copy is removed: \(why)")
            XCTAssertEqual(read("hosts/cfstb/instances"), "", why)
            let t = ticks("lm")
            XCTAssertGreaterThan(waitForTick("lm", above: t.last + 2), t.last + 2, why)
            XCTAssertEqual(ticks("lm").boots.count, 1, "never rebooted: \(why)")
        }

        // 1. live-migrate-abort while the job runs (slowed to 2 MiB/s so it can be caught).
        ok("echo 2 > config/live_migration_bandwidth")
        ok("echo 'live-migrate cfstb' > instances/lm/ctl")
        waitForMigrationRunning("lm")
        XCTAssertEqual(read("hosts/cfstb/instances"), "lm", "the destination is claimed while it runs")
        XCTAssertTrue(read("instances/lm/migration").contains(expectedMode), read("instances/lm/migration"))
        ok("echo live-migrate-abort > instances/lm/ctl")
        stayed("abort")
        XCTAssertTrue(read("instances/lm/fault").contains("aborted by request"), read("instances/lm/fault"))
        XCTAssertTrue(read("instances/lm/migrations").contains("live cfsta -> cfstb aborted"), read("instances/lm/migrations"))
        XCTAssertTrue(fails("echo live-migrate-abort > instances/lm/ctl").contains("Device or resource busy"))

        // 2. live_migration_completion_timeout: 1 s per GiB is 0.125 s for 128 MiB.
        ok("echo 1 > config/live_migration_completion_timeout")
        ok("echo 'live-migrate cfstb' > instances/lm/ctl")
        stayed("timeout")
        XCTAssertTrue(read("instances/lm/fault").contains("did not complete within 1 s (live_migration_completion_timeout: 1 s per GiB of RAM)"),
                      read("instances/lm/fault"))

        // 3. The destination's libvirt refuses (a domain of that name already defined there).
        ok("echo 800 > config/live_migration_completion_timeout && echo 0 > config/live_migration_bandwidth")
        let name = virsh("cfsta", "domname \(id)").trimmingCharacters(in: .whitespacesAndNewlines)
        let squatter = "<domain type='qemu'><name>\(name)</name><memory unit='MiB'>16</memory><os><type>hvm</type></os></domain>"
        try squatter.write(toFile: work + "/squatter.xml", atomically: true, encoding: .utf8)
        XCTAssertTrue(virsh("cfstb", "define '\(work)/squatter.xml'").contains("defined"))
        defer { _ = virsh("cfstb", "undefine '\(name)'") }
        ok("echo 'live-migrate cfstb' > instances/lm/ctl")
        XCTAssertEqual(ok("timeout 120 cat instances/lm/wait"), "ACTIVE\n")
        XCTAssertEqual(read("instances/lm/host"), "cfsta")
        XCTAssertTrue(read("instances/lm/fault").hasPrefix("live migration to cfstb failed:"), read("instances/lm/fault"))
        XCTAssertTrue(read("instances/lm/migrations").contains("live cfsta -> cfstb failed"))
        XCTAssertEqual(volumes("cfstb").filter { $0.hasPrefix(id) }, [])
        XCTAssertTrue(virsh("cfsta", "list --uuid").contains(id), "still running on the source")
        let t = ticks("lm")
        XCTAssertGreaterThan(waitForTick("lm", above: t.last + 2), t.last + 2)
        XCTAssertEqual(ticks("lm").boots.count, 1)
        XCTAssertEqual(read("instances/lm/migrations").split(separator: "\n").count, 3)
    }

    /// kill -9 of the controller while libvirt moves the guest: after the restart the
    /// migration is settled from what both hosts report: running on exactly one host, the
    /// claim there only, nothing left on the other.
    func testKillNineMidMigrationSettlesOnOneHost() throws {
        bootCountingGuest()
        let id = read("instances/lm/id")
        ok("echo 4 > config/live_migration_bandwidth")
        unmount()
        try mount(env: "CLOUDFS_CRASH_AT=live_migration.running")
        ok("echo 'live-migrate cfstb' > instances/lm/ctl")
        let dead = daemonDied()
        XCTAssertTrue(dead, "the daemon reached live_migration.running and was killed")
        try mount()
        XCTAssertEqual(ok("timeout 150 cat instances/lm/wait", timeout: 180), "ACTIVE\n", read("instances/lm/fault"))
        let host = read("instances/lm/host")
        let other = host == "cfsta" ? "cfstb" : "cfsta"
        XCTAssertEqual(domainHosts(id), [host])
        XCTAssertEqual(volumes(other).filter { $0.hasPrefix(id) }, [])
        XCTAssertEqual(read("hosts/\(host)/instances"), "lm")
        XCTAssertEqual(read("hosts/\(other)/instances"), "")
        XCTAssertEqual(read("hosts/\(other)/ram_mb_used"), "0")
        XCTAssertFalse(read("instances/lm/migrations").contains("running"), read("instances/lm/migrations"))
        let t = ticks("lm")
        XCTAssertGreaterThan(waitForTick("lm", above: t.last + 2), t.last + 2,
                             "power_state \(read("instances/lm/power_state")), on \(host): \(virsh(host, "domstate \(id)")); "
                             + "console: \(read("instances/lm/console").suffix(300)); events: \(read("events").suffix(1500))")
        XCTAssertEqual(ticks("lm").boots.count, 1, "the guest never rebooted")
    }
}
