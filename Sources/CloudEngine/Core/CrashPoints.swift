import Foundation

/// Test hook for crash-recovery tests: `CLOUDFS_CRASH_AT=POINT[#N][,POINT...]` makes the
/// daemon kill itself with SIGKILL the N-th time (default first) it passes POINT, e.g.
/// `build.spawned` (domain started, ACTIVE not yet committed). Unset, it costs one lookup.
/// Points: create.committed, build.scheduled, build.networked, build.disk, build.spawned,
/// delete.destroyed, delete.released, action.performed, rebuild.disk, resize.claimed,
/// resize.disk, resize.spawned, revert.restored.
enum CrashPoints {
    private static let wanted: [String: Int] = {
        guard let spec = ProcessInfo.processInfo.environment["CLOUDFS_CRASH_AT"], !spec.isEmpty else { return [:] }
        var out: [String: Int] = [:]
        for item in spec.split(separator: ",") {
            let parts = item.split(separator: "#", maxSplits: 1)
            out[String(parts[0])] = parts.count == 2 ? Int(parts[1]) ?? 1 : 1
        }
        return out
    }()
    private static let counts = NSLock()
    nonisolated(unsafe) private static var seen: [String: Int] = [:]

    static func pass(_ point: String) {
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
