import CloudCore
#if canImport(Glibc)
import Glibc
#endif

/// The few file operations `HostNetworking` needs, with errno captured at the call.
enum Files {
    /// The whole file as text, nil when it cannot be read.
    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n < 0 { return nil }
            if n == 0 { break }
            bytes += buf[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `text` to `path` atomically (temporary file + rename), mode 0644, unless the
    /// file already holds exactly that. Returns whether the file changed.
    static func replace(_ path: String, with text: String) throws(CloudError) -> Bool {
        if read(path) == text { return false }
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("create", tmp) }
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { let e = failure("write", tmp); close(fd); throw e }
            done += n
        }
        guard fsync(fd) == 0 else { let e = failure("fsync", tmp); close(fd); throw e }
        close(fd)
        guard rename(tmp, path) == 0 else { throw failure("rename", path) }
        return true
    }

    /// Creates `path` and its parents (mode 0755); existing directories are fine.
    static func makeDirectory(_ path: String) throws(CloudError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o755) != 0, errno != EEXIST { throw failure("create directory", prefix) }
        }
    }

    /// The names in a directory (without `.` and `..`); empty when it cannot be read.
    static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Removes a directory holding only files (our per-network directories); best effort.
    static func removeTree(_ path: String) {
        for name in list(path) { unlink(path + "/" + name) }
        rmdir(path)
    }

    /// True when `pid` has exited but not been reaped.
    static func isZombie(_ pid: pid_t) -> Bool {
        guard let stat = read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    private static func failure(_ what: String, _ path: String) -> CloudError {
        CloudError.io("cannot \(what) \(path): \(String(cString: strerror(errno)))")
    }
}
