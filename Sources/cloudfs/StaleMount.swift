import Foundation
import FuseKit

/// A mount point left by a daemon that died (killed, crashed): the kernel answers every
/// access with ENOTCONN until it is unmounted. `cloudfs mount` clears it first, as
/// `fusermount3 -uz` would, so a restart after kill -9 is one command.
enum StaleMount {
    /// True when `path` is a FUSE mount whose daemon is gone.
    static func isDead(_ path: String) -> Bool { FuseConnection.ended(at: path) }

    /// Lazily unmounts a dead mount at `path`; returns whether one was cleared.
    @discardableResult
    static func clear(_ path: String) -> Bool {
        guard isDead(path) else { return false }
        for tool in ["/usr/bin/fusermount3", "/bin/fusermount3"] where FileManager.default.isExecutableFile(atPath: tool) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: tool)
            p.arguments = ["-u", "-z", path]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            guard (try? p.run()) != nil else { continue }
            p.waitUntilExit()
            break
        }
        if isDead(path) { _ = umount2(path, Int32(MNT_DETACH)) }
        if !isDead(path) {
            FileHandle.standardError.write(Data("cloudfs: cleared the dead mount at \(path) (its daemon had died)\n".utf8))
            return true
        }
        return false
    }
}
