import ArgumentParser
import CloudCore
import Foundation

/// Restart of a cloud holding many instances: `cloudfs unmount` + `cloudfs mount`, and a
/// crash (kill -9 of the daemon, `fusermount3 -u`, mount), each timed until the mount
/// returns and until `ls instances` and every `status` answer; vs mounting an empty state.
///
/// test:/// domains live inside the daemon, so a restarted daemon finds none of them: the
/// instances come back SHUTOFF with the fault "the domain is missing on host ...", which
/// the restart has to record (one transaction each).
struct RestartBench {
    let rig: Rig
    let count: Int
    let reproduce: String

    /// Until `ls instances | wc -l` shows `count` and every status file reads.
    func untilListed() throws {
        let dir = rig.mnt + "/instances"
        // printf is the shell's own: 100,000 paths are past the kernel's limit for one exec.
        try timed("until [ \"$(ls '\(dir)' | wc -l)\" -eq \(count) ] && " +
                  "[ \"$(printf '%s\\n' '\(dir)'/*/status | xargs cat | wc -l)\" -eq \(count) ]; do sleep 0.01; done")
    }

    /// Statuses of all instances, counted: "1000 SHUTOFF" etc.
    func census() -> String {
        let dir = rig.mnt + "/instances"
        var counts: [String: Int] = [:]
        var missing = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            let s = ((try? String(contentsOfFile: "\(dir)/\(name)/status", encoding: .utf8)) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
            counts[s, default: 0] += 1
            if ((try? String(contentsOfFile: "\(dir)/\(name)/fault", encoding: .utf8)) ?? "").contains("domain is missing") { missing += 1 }
        }
        return counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + ", \(missing) 'domain is missing'"
    }

    /// Until every instance's `fault` says its domain is missing (the first reconcile sweep
    /// of the new daemon notices it; recovery itself does not). Nil after `limit` seconds.
    func untilMissingNoticed(limit: Double = 120) -> Double? {
        let t0 = now()
        while now() - t0 < limit {
            let n = ((try? FileManager.default.contentsOfDirectory(atPath: rig.mnt + "/instances")) ?? []).filter {
                ((try? String(contentsOfFile: "\(rig.mnt)/instances/\($0)/fault", encoding: .utf8)) ?? "").contains("domain is missing")
            }.count
            if n == count { return now() - t0 }
            usleep(200_000)
        }
        return nil
    }

    /// True while `pid` is alive and not yet a zombie (a killed daemon's FUSE connection is
    /// gone once it exits, whoever reaps it).
    func running(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[close...].hasPrefix(") Z")
    }

    var pidFile: String { "/run/cloudfs/" + rig.mnt.replacingOccurrences(of: "/", with: "_") + ".pid" }

    func run() throws {
        // Baseline: the daemon started on an empty state directory, same hosts (best of 3).
        let emptyMnt = rig.work + "/empty-mnt", emptyState = rig.work + "/empty-state"
        var empty: [Double] = []
        for _ in 0..<3 {
            try timed("rm -rf '\(emptyState)'; mkdir -p '\(emptyMnt)'")
            empty.append(try timed("'\(rig.cloudfs)' mount '\(emptyMnt)' --state '\(emptyState)' \(rig.hostArgs) >/dev/null"))
            try timed("'\(rig.cloudfs)' unmount '\(emptyMnt)'")
        }
        try timed("rm -rf '\(emptyState)' '\(emptyMnt)'")

        let dir = rig.mnt + "/instances"
        let t0 = now()
        // The first instance that is not ACTIVE is named, with its fault, in the error.
        let why = rig.work + "/not-active"
        do {
            try timed("cd '\(dir)' && for i in $(seq 1 \(count)); do mkdir r$i 2>>'\(why)'; done; " +
                      "for i in $(seq 1 \(count)); do s=$(cat r$i/wait 2>&1); [ \"$s\" = ACTIVE ] || " +
                      "{ echo \"r$i: $s: $(cat r$i/fault 2>&1)\" >> '\(why)'; exit 1; }; done")
        } catch {
            let reason = ((try? String(contentsOfFile: why, encoding: .utf8)) ?? "").split(separator: "\n").prefix(3).joined(separator: "; ")
            throw CloudError.io("building \(count) instances for the restart: \(reason)")
        }
        let built = now() - t0

        // Clean restart.
        let unmount = try timed("'\(rig.cloudfs)' unmount '\(rig.mnt)'")
        rig.mounted = false
        let t1 = now()
        try timed(rig.mountCommand)
        rig.mounted = true
        let cleanMount = now() - t1
        try untilListed()
        let cleanReady = now() - t1
        let afterClean = census()
        let cleanNoticed = untilMissingNoticed()

        // Start them all again (each start re-defines its missing domain), so the crash
        // restart also finds running instances whose domains are gone.
        let t2 = now()
        try timed("cd '\(dir)' && for i in $(seq 1 \(count)); do echo r$i; done | xargs -P 16 -n 50 sh -c " +
                  "'for n; do echo start > $n/ctl; done; for n; do cat $n/wait > /dev/null; done' sh")
        let restarted = now() - t2
        let beforeCrash = census()

        // Crash restart: kill -9 the daemon, clear the dead mount, mount again.
        // The daemon's record: its pid on the first line (its state directory on the second).
        let record = (try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? ""
        let pid = record.split(separator: "\n").first.flatMap { Int32($0.trimmingCharacters(in: .whitespaces)) } ?? 0
        guard pid > 0, running(pid) else { throw ValidationError("no running daemon in \(pidFile)") }
        let t3 = now()
        kill(pid, SIGKILL)
        while running(pid) { usleep(1_000) }
        rig.mounted = false
        try timed("fusermount3 -u '\(rig.mnt)' && \(rig.mountCommand)")
        rig.mounted = true
        let crashMount = now() - t3
        try untilListed()
        let crashReady = now() - t3
        let afterCrash = census()
        let crashNoticed = untilMissingNoticed()

        let base = empty.min()!
        print("6. restart with \(count) instances on 4 test:/// hosts (\(String(format: "%.1f", built)) s to build them; unmount took \(String(format: "%.1f", unmount)) s)")
        report("   cloudfs mount on an empty state dir (baseline)", String(format: "%8.0f ms", base * 1000))
        report("   unmount + mount: mount returned", String(format: "%8.0f ms", cleanMount * 1000), String(format: "%.1fx", cleanMount / base))
        report("   unmount + mount: all listed, every status read", String(format: "%8.0f ms", cleanReady * 1000), String(format: "%.1fx", cleanReady / base))
        report("   kill -9 + fusermount3 -u + mount: mount returned", String(format: "%8.0f ms", crashMount * 1000), String(format: "%.1fx", crashMount / base))
        report("   kill -9 + fusermount3 -u + mount: all listed, read", String(format: "%8.0f ms", crashReady * 1000), String(format: "%.1fx", crashReady / base))
        func noticed(_ t: Double?) -> String { t.map { String(format: "%.1f s later", $0) } ?? "not within 120 s" }
        print("   right after the clean restart: \(afterClean);")
        print("     every instance's fault named its missing domain \(noticed(cleanNoticed)) (first reconcile sweep)")
        print("   start of all \(count) (re-defining the domains) took \(String(format: "%.1f", restarted)) s: \(beforeCrash)")
        print("   right after the crash restart: \(afterCrash);")
        print("     every instance's fault named its missing domain \(noticed(crashNoticed))")
        print("   (test:/// domains live inside the daemon, so a new daemon finds them missing: expected)")
        print("   reproduce: \(reproduce)")
        print("")
    }
}

