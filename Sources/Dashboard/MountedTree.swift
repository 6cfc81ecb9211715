#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// What the tree answered to one file operation: the errno and, when the cloud logged a
/// refusal for it, the reason from `/events` (the tree's error channel, SPEC "Errors").
public struct TreeError: Error, CustomStringConvertible, Sendable {
    public let errno: Int32
    public let operation: String
    public let path: String
    public var reason: String?

    /// `EBUSY: cannot pause web1 while it is SHUTOFF` — the errno name and the cloud's words.
    public var description: String {
        let name = TreeError.errnoNames[errno] ?? "errno \(errno)"
        return "\(name): " + (reason ?? "\(operation) \(path): " + String(cString: strerror(errno)))
    }

    static let errnoNames: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", EIO: "EIO", EACCES: "EACCES", EEXIST: "EEXIST",
        ENOTDIR: "ENOTDIR", EISDIR: "EISDIR", EINVAL: "EINVAL", ENOSPC: "ENOSPC", EROFS: "EROFS",
        EBUSY: "EBUSY", ENOTEMPTY: "ENOTEMPTY", EDQUOT: "EDQUOT", ENOTSUP: "ENOTSUP", ENAMETOOLONG: "ENAMETOOLONG",
    ]
}

/// The mounted cloudfs tree as the dashboard's only API: every page is made of directory
/// listings and file reads, every button is a `mkdir`, a write or an `rmdir` — the same
/// calls a shell script makes, with the uid of the process that runs the dashboard.
public struct MountedTree: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    func path(_ rel: String) -> String { rel.isEmpty ? root : root + "/" + rel }

    /// The names in a directory, sorted; ENOENT/EACCES as a TreeError.
    public func list(_ rel: String) throws(TreeError) -> [String] {
        guard let dir = opendir(path(rel)) else { throw failure("ls", rel) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// The whole file (a `cat`), as bytes.
    public func readBytes(_ rel: String) throws(TreeError) -> [UInt8] {
        let fd = open(path(rel), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cat", rel) }
        defer { close(fd) }
        guard let bytes = Self.pread(fd, from: 0) else { throw failure("cat", rel) }
        return bytes
    }

    /// What an open file holds from `offset` to its end (at most `limit` bytes); nil on a
    /// read error. The tree's synthetic files answer reads at any offset.
    static func pread(_ fd: Int32, from offset: Int, limit: Int = .max) -> [UInt8]? {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let n = chunk.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress, $0.count, off_t(offset + out.count)) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// The file's text without its trailing newline.
    public func read(_ rel: String) throws(TreeError) -> String {
        var s = String(decoding: try readBytes(rel), as: UTF8.self)
        while s.hasSuffix("\n") { s.removeLast() }
        return s
    }

    /// The file's text, or "" when it cannot be read (a missing optional field).
    public func value(_ rel: String) -> String { (try? read(rel)) ?? "" }

    /// `echo TEXT > FILE` (create: also makes it, as `cp` into /images or /keypairs does):
    /// one write and the close, whose error counts too (values applied at close).
    /// `exclusive`: only a new file (`O_EXCL`: EEXIST when the name is taken).
    public func write(_ rel: String, _ text: String, create: Bool = false, exclusive: Bool = false) throws(TreeError) {
        try write(rel, bytes: Array(text.utf8), create: create, exclusive: exclusive)
    }

    public func write(_ rel: String, bytes: [UInt8], create: Bool = false, exclusive: Bool = false) throws(TreeError) {
        let flags = O_WRONLY | O_TRUNC | O_CLOEXEC | (create ? O_CREAT : 0) | (exclusive ? O_EXCL : 0)
        let fd = open(path(rel), flags, 0o644)
        guard fd >= 0 else { throw failure(create ? "cp" : "echo >", rel) }
        do throws(TreeError) { try writeAll(fd, bytes, rel) } catch { close(fd); throw error }
        guard close(fd) == 0 else { throw failure("close", rel) }
    }

    /// Writes all of `bytes` to an open descriptor.
    func writeAll(_ fd: Int32, _ bytes: [UInt8], _ rel: String) throws(TreeError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 { if errno == EINTR { continue }; throw failure("write", rel) }
            done += n
        }
    }

    public func mkdir(_ rel: String) throws(TreeError) {
        guard Glibc.mkdir(path(rel), 0o755) == 0 else { throw failure("mkdir", rel) }
    }

    public func rmdir(_ rel: String) throws(TreeError) {
        guard Glibc.rmdir(path(rel)) == 0 else { throw failure("rmdir", rel) }
    }

    public func remove(_ rel: String) throws(TreeError) {
        guard unlink(path(rel)) == 0 else { throw failure("rm", rel) }
    }

    /// `ln -s TARGET LINK` (attaching a volume from the instance side).
    public func symlink(_ target: String, at rel: String) throws(TreeError) {
        guard Glibc.symlink(target, path(rel)) == 0 else { throw failure("ln -s", rel) }
    }

    public func exists(_ rel: String) -> Bool { access(path(rel), F_OK) == 0 }

    /// Opens a file for a streamed write (an image upload): the descriptor, closed by the caller.
    public func openForWriting(_ rel: String) throws(TreeError) -> Int32 {
        let fd = open(path(rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("cp", rel) }
        return fd
    }

    /// The errno just set, with the cloud's reason for it when `/events` has one.
    func failure(_ op: String, _ rel: String) -> TreeError {
        let code = errno
        var e = TreeError(errno: code, operation: op, path: rel)
        e.reason = RefusalLog(tree: self).reason(object: rel)
        return e
    }

    /// Whether `path` is where a cloudfs tree is mounted (mountinfo's source `cloudfs`,
    /// a FUSE file system): the dashboard refuses to start anywhere else.
    public static func isCloudfsMount(_ path: String) -> Bool {
        let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard let table = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return false }
        for line in table.split(separator: "\n") {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ... - FSTYPE SOURCE SUPEROPTIONS
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " "), right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 2 else { continue }
            let point = String(left[4]).replacingOccurrences(of: "\\040", with: " ")
            if point == real, right[0].hasPrefix("fuse"), right[1] == "cloudfs" { return true }
        }
        return false
    }
}
