import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What one raw system call did: `errno` 0 on success; `short` when a write took fewer
/// bytes than it was given (the kernel split it and a later piece was refused).
struct SyscallOutcome: Sendable {
    var errno: Int32 = 0
    var short = false
    var refused: Bool { errno != 0 || short }
}

/// Raw system calls on the mount (through Glibc, not a shell), so every errno is exact.
/// Paths are bytes: names that are not UTF-8 reach the kernel as they are.
enum RawFS {
    static func withPath<T>(_ path: [UInt8], _ body: (UnsafePointer<CChar>) -> T) -> T {
        let c = path.map { CChar(bitPattern: $0) } + [0]
        return c.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// open + pwrite + close (close reports FLUSH's error), like `echo DATA > FILE`.
    static func write(_ path: [UInt8], _ data: [UInt8], offset: Int64, flags: Int32 = O_WRONLY | O_TRUNC) -> SyscallOutcome {
        let fd = withPath(path) { Glibc.open($0, flags | O_CLOEXEC, 0o644) }
        if fd < 0 { return SyscallOutcome(errno: errno) }
        var out = SyscallOutcome()
        let n = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        if n < 0 { out.errno = errno } else if n < data.count { out.short = true }
        if Glibc.close(fd) != 0, out.errno == 0 { out.errno = errno }
        return out
    }

    /// Reads a whole file (up to 4 MiB); nil with the errno on failure.
    static func read(_ path: [UInt8]) -> (Int32, [UInt8]) {
        let fd = withPath(path) { Glibc.open($0, O_RDONLY | O_CLOEXEC) }
        if fd < 0 { return (errno, []) }
        defer { Glibc.close(fd) }
        var all: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while all.count < 4 << 20 {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { return (errno, all) }
            if n == 0 { break }
            all += buf[0..<n]
        }
        return (0, all)
    }

    static func mkdir(_ path: [UInt8]) -> SyscallOutcome {
        withPath(path) { Glibc.mkdir($0, 0o755) } == 0 ? SyscallOutcome() : SyscallOutcome(errno: errno)
    }

    static func rmdir(_ path: [UInt8]) -> SyscallOutcome {
        withPath(path) { Glibc.rmdir($0) } == 0 ? SyscallOutcome() : SyscallOutcome(errno: errno)
    }

    static func unlink(_ path: [UInt8]) -> SyscallOutcome {
        withPath(path) { Glibc.unlink($0) } == 0 ? SyscallOutcome() : SyscallOutcome(errno: errno)
    }

    static func truncate(_ path: [UInt8], _ size: Int64) -> SyscallOutcome {
        withPath(path) { Glibc.truncate($0, off_t(size)) } == 0 ? SyscallOutcome() : SyscallOutcome(errno: errno)
    }

    static func rename(_ from: [UInt8], _ to: [UInt8]) -> SyscallOutcome {
        let r = withPath(from) { f in withPath(to) { t in Glibc.rename(f, t) } }
        return r == 0 ? SyscallOutcome() : SyscallOutcome(errno: errno)
    }

    /// `stat` succeeds: the daemon is alive and answering.
    static func answers(_ path: String) -> Int32 {
        var st = stat()
        return stat(path, &st) == 0 ? 0 : errno
    }

    /// The C name of an errno (`EINVAL`), as /events writes it.
    static func name(_ e: Int32) -> String {
        switch e {
        case 0: "OK"
        case ENOENT: "ENOENT"; case EEXIST: "EEXIST"; case EINVAL: "EINVAL"; case EBUSY: "EBUSY"
        case EDQUOT: "EDQUOT"; case ENOSPC: "ENOSPC"; case EACCES: "EACCES"; case EPERM: "EPERM"
        case EROFS: "EROFS"; case EIO: "EIO"; case EISDIR: "EISDIR"; case ENOTDIR: "ENOTDIR"
        case ENOTEMPTY: "ENOTEMPTY"; case ENAMETOOLONG: "ENAMETOOLONG"; case EXDEV: "EXDEV"
        case ENOTCONN: "ENOTCONN"; case EBADF: "EBADF"; case EFBIG: "EFBIG"; case ENOSYS: "ENOSYS"
        case EINTR: "EINTR"
        default: "E\(e)"
        }
    }
}

/// The result of a call made on the watchdog's thread (written before the semaphore).
private final class ResultBox<T>: @unchecked Sendable { var value: T? }

/// Runs blocking calls on one worker thread and gives up on a call that does not return
/// in time (a hung daemon), so a fuzz run always ends.
final class Watchdog: @unchecked Sendable {
    private let queue = DispatchQueue(label: "fuzz.worker")
    private(set) var hung = false

    func run<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () -> T) -> T? {
        if hung { return nil }
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        queue.async { box.value = body(); done.signal() }
        if done.wait(timeout: .now() + seconds) == .timedOut { hung = true; return nil }
        return box.value
    }

    /// Aborts the FUSE connection behind `mountpoint` (so calls stuck in it return).
    static func abortConnection(_ mountpoint: String) {
        guard let info = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return }
        for line in info.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count > 4, f[4] == mountpoint, let minor = f[2].split(separator: ":").last else { continue }
            try? "1".write(toFile: "/sys/fs/fuse/connections/\(minor)/abort", atomically: false, encoding: .utf8)
        }
    }
}
