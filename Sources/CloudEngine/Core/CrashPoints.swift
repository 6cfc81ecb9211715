import Foundation

/// Test hook for crash-recovery tests: `CLOUDFS_CRASH_AT=POINT[#N][,POINT...]` makes the
/// daemon kill itself with SIGKILL the N-th time (default first) it passes POINT, e.g.
/// `build.spawned` (domain started, ACTIVE not yet committed). Unset, it costs one lookup.
/// `CLOUDFS_CRASH_AT=@FILE` reads the same list from FILE when the daemon starts, so a test
/// can arm and disarm points without changing the daemon's environment (libvirt's embedded
/// QEMU driver probes QEMU again, for seconds, whenever the environment changes).
/// Points: create.committed, build.scheduled, build.networked, build.disk, build.spawned,
/// delete.destroyed, delete.released, action.performed, rebuild.disk, resize.claimed,
/// resize.disk, resize.spawned, revert.restored; volumes: volume.creating, volume.deleting,
/// attach.reserved, attach.attaching, attach.plugged, detach.detaching, detach.config,
/// detach.unplugged, extend.extending, extend.resized, snapshot.creating, snapshot.copied.
enum CrashPoints {
    private static let wanted: [String: Int] = {
        guard var spec = ProcessInfo.processInfo.environment["CLOUDFS_CRASH_AT"], !spec.isEmpty else { return [:] }
        if spec.hasPrefix("@") {
            spec = ((try? String(contentsOfFile: String(spec.dropFirst()), encoding: .utf8)) ?? "")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if spec.isEmpty { return [:] }
        }
        var out: [String: Int] = [:]
        for item in spec.split(separator: ",") {
            let parts = item.split(separator: "#", maxSplits: 1)
            out[String(parts[0])] = parts.count == 2 ? Int(parts[1]) ?? 1 : 1
        }
        return out
    }()
    private static let counts = NSLock()
    nonisolated(unsafe) private static var seen: [String: Int] = [:]

    /// Reads the armed points now (the engine's start), not at the first `pass`.
    static func arm() { _ = wanted; _ = delays }

    /// `CLOUDFS_DELAY_AT=POINT:MS[,POINT:MS...]`: the task passing POINT sleeps MS
    /// milliseconds there every time, so a test can watch a transitional state (a
    /// dashboard row in BUILD) that a test:/// host would otherwise pass in microseconds.
    private static let delays: [String: Int] = {
        guard let spec = ProcessInfo.processInfo.environment["CLOUDFS_DELAY_AT"], !spec.isEmpty else { return [:] }
        var out: [String: Int] = [:]
        for item in spec.split(separator: ",") {
            let parts = item.split(separator: ":", maxSplits: 1)
            if parts.count == 2, let ms = Int(parts[1]), ms > 0 { out[String(parts[0])] = min(ms, 60_000) }
        }
        return out
    }()

    static func pass(_ point: String) {
        if let ms = delays[point] { usleep(UInt32(ms) * 1000) }
        guard let n = wanted[point] else { return }
        counts.lock()
        seen[point, default: 0] += 1
        let hit = seen[point] == n
        counts.unlock()
        if hit {
            FileHandle.standardError.write(Data("cloudfs: crash point \(point) reached; killing myself\n".utf8))
            kill(getpid(), SIGKILL)
        }
    }
}
