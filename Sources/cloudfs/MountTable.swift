import Foundation

/// The kernel's mount table for this process's mount namespace (`/proc/self/mountinfo`):
/// what, if anything, is mounted on a path.
enum MountTable {
    /// One mount: its file system type (`fuse.cloudfs`, `ext4`, ...) and source.
    struct Entry {
        var mountPoint: String
        var type: String
        var source: String
    }

    /// The mount on `path` itself (the topmost one when several are stacked), or nil when
    /// `path` is not a mount point. `path` must be absolute and normalised.
    static func entry(at path: String) -> Entry? {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").compactMap(parse).last { $0.mountPoint == path }
    }

    /// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`: the fifth field is
    /// the mount point; after the `-` separator come the type and the source.
    static func parse(_ line: Substring) -> Entry? {
        let fields = line.split(separator: " ")
        guard fields.count >= 7, let dash = fields.firstIndex(of: "-"), dash + 2 < fields.count else { return nil }
        return Entry(mountPoint: unescape(fields[4]), type: String(fields[dash + 1]), source: unescape(fields[dash + 2]))
    }

    /// The kernel writes space, tab, newline and backslash as three octal digits (`\040`).
    static func unescape(_ field: Substring) -> String {
        var bytes: [UInt8] = []
        var i = field.utf8.startIndex
        let utf8 = field.utf8
        while i != utf8.endIndex {
            let c = utf8[i]
            if c == UInt8(ascii: "\\"), let end = utf8.index(i, offsetBy: 4, limitedBy: utf8.endIndex),
               let value = UInt8(String(decoding: utf8[utf8.index(after: i)..<end], as: UTF8.self), radix: 8) {
                bytes.append(value)
                i = end
            } else {
                bytes.append(c)
                i = utf8.index(after: i)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// An exclusive `flock(2)` on the mount point directory itself, taken by the daemon before
/// it checks `MountTable` and held for its life: two daemons racing onto one directory
/// cannot both pass the check (once mounted, the path opens the mounted root instead, and
/// the table names the mount).
final class MountPointLock {
    private let fd: Int32

    init(_ path: String) throws {
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ValidationFailure("cannot open mount point \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw ValidationFailure("\(path) is being mounted by another cloudfs process")
        }
    }

    deinit { close(fd) }
}
