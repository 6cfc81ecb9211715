import Foundation

/// One long-lived process per state directory: an exclusive `flock(2)` on
/// `STATE/cloudfs.lock`, held for the holder's whole life. The kernel drops it when the
/// process dies, so a kill -9 never leaves a stale lock; the descriptor is close-on-exec,
/// so nothing the daemon starts (dnsmasq, QEMU through libvirt) can keep it alive.
///
/// The file names its holder (`pid N` and what it does, e.g. `mounted on /cloud`) so a
/// second process can say who is in the way. It is the same lock for every process that
/// writes the state directory: the mount daemon and `cloudfs unmount --teardown-network`.
final class StateLock {
    /// Who holds a state directory's lock, as its file says.
    struct Holder: CustomStringConvertible {
        var pid: Int32?
        var role: String

        var description: String {
            let who = pid.map { "cloudfs pid \($0)" } ?? "another cloudfs process"
            return role.isEmpty ? who : "\(who) \(role)"
        }
    }

    /// A lock someone else holds.
    struct Busy: Error, CustomStringConvertible {
        var stateDir: String
        var holder: Holder
        var description: String { "state directory \(stateDir) is in use by \(holder)" }
    }

    static func path(_ stateDir: String) -> String { stateDir + "/cloudfs.lock" }

    let stateDir: String
    private let fd: Int32

    private init(stateDir: String, fd: Int32) {
        self.stateDir = stateDir
        self.fd = fd
    }

    deinit { close(fd) }

    /// Takes the lock (creating the state directory and the file when needed) and records
    /// this process as its holder with `role`. Throws `Busy` naming the holder when another
    /// process has it, without waiting and without changing anything on disk.
    static func acquire(_ stateDir: String, role: String) throws -> StateLock {
        if let holder = holder(of: stateDir) { throw Busy(stateDir: stateDir, holder: holder) }
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
        let fd = open(path(stateDir), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("cannot open \(path(stateDir))") }
        // A real holder keeps the lock for its life; `holder(of:)` in another process
        // holds a shared lock for microseconds, so a few retries tell the two apart.
        var locked = flock(fd, LOCK_EX | LOCK_NB) == 0
        for _ in 0..<10 where !locked && errno == EWOULDBLOCK {
            usleep(20_000)
            locked = flock(fd, LOCK_EX | LOCK_NB) == 0
        }
        guard locked else {
            let busy = errno == EWOULDBLOCK
            let error = failure("cannot lock \(path(stateDir))")
            close(fd)
            if busy { throw Busy(stateDir: stateDir, holder: waitForHolderRecord(stateDir)) }
            throw error
        }
        let lock = StateLock(stateDir: stateDir, fd: fd)
        try lock.record(role: role)
        return lock
    }

    /// The process holding `stateDir`'s lock, or nil when none does. Only reads: a state
    /// directory or lock file that does not exist is simply not held.
    static func holder(of stateDir: String) -> Holder? {
        let fd = open(path(stateDir), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard flock(fd, LOCK_SH | LOCK_NB) != 0, errno == EWOULDBLOCK else {
            flock(fd, LOCK_UN)
            return nil
        }
        return waitForHolderRecord(stateDir)
    }

    /// Rewrites the holder record (e.g. once the mount point is known).
    func record(role: String) throws {
        let text = "pid \(getpid())\n\(role)\n"
        guard ftruncate(fd, 0) == 0 else { throw Self.failure("cannot write \(Self.path(stateDir))") }
        let written = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        guard written == text.utf8.count else { throw Self.failure("cannot write \(Self.path(stateDir))") }
    }

    /// The holder's record. A holder writes it right after taking the lock, so an empty
    /// file is read again for a moment before giving up on naming it.
    private static func waitForHolderRecord(_ stateDir: String) -> Holder {
        for _ in 0..<20 {
            if let text = try? String(contentsOfFile: path(stateDir), encoding: .utf8), !text.isEmpty {
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                let pid = lines.first.flatMap { $0.hasPrefix("pid ") ? Int32($0.dropFirst(4)) : nil }
                return Holder(pid: pid, role: lines.count > 1 ? String(lines[1]) : "")
            }
            usleep(25_000)
        }
        return Holder(pid: nil, role: "")
    }

    private static func failure(_ what: String) -> Error {
        ValidationFailure("\(what): \(String(cString: strerror(errno)))")
    }
}

/// A refusal whose text is the whole message (`cloudfs: MESSAGE` on stderr, exit 1).
struct ValidationFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
