import CloudCore
import Foundation
import FuseKit
import Synchronization

/// One `cp` into `/images` (Glance queued → saving → active): the upload the cloud gave
/// us, kept in the open-file table from CREATE to RELEASE.
final class UploadState: Sendable {
    let name: String
    let upload: any ImageUpload
    private let abortedFlag = Mutex(false)
    init(name: String, upload: any ImageUpload) { self.name = name; self.upload = upload }

    var isAborted: Bool { abortedFlag.withLock { $0 } }

    /// Aborts once (the cloud's abort is idempotent too).
    func abort(_ reason: String) {
        let first = abortedFlag.withLock { a -> Bool in defer { a = true }; return !a }
        if first { upload.abort(reason: reason) }
    }
}

/// Image bytes (SPEC "cp FILE /images/NAME"): CREATE starts an upload, WRITEs go straight
/// to the image store, the FLUSH of the last `close` commits (so `cp` sees a refusal as
/// its close error), RELEASE discards whatever was not committed. Reading an image (cp
/// out) serves `pread`s of the stored file; only `active` images are readable, others
/// answer `EBUSY` (their bytes are incomplete or about to vanish).
extension CloudFileSystem {
    /// The image a node is the bytes of (`/images/NAME`), if it is one.
    func imageName(_ node: Node) -> String? {
        guard case .member(let id, let name) = node, let f = Collections[id]?.memberFile(name),
              case .imageBytes = f.style else { return nil }
        return name
    }

    /// `stat` of `/images/NAME`: the image, or an upload whose image is gone already.
    func imageFileMeta(_ name: String, _ ctx: Context) -> Meta? {
        let upload = uploads.withLock { $0[name] }
        guard let info = ctx.api.images.get(name, ctx.caller) else {
            guard let upload else { return nil }
            var m = Meta.file(Int(upload.upload.size), .readWrite, time: mountTime)
            m.blockSize = 1 << 20
            return m
        }
        return imageMeta(info, uploadSize: upload?.upload.size)
    }

    func imageMeta(_ info: ImageInfo, uploadSize: Int64?) -> Meta {
        var m = Meta.file(Int(max(info.size, uploadSize ?? 0)), .readWrite, time: info.created.timeIntervalSince1970,
                          uid: info.ownerUID, identity: info.id, project: info.project)
        m.blockSize = 1 << 20  // cp sizes its buffer from st_blksize: 1 MiB WRITEs
        return m
    }

    func createImage(_ name: String, parent: Node, flags: OpenFlags, _ r: Request) throws(CloudError) -> (Entry, OpenReply) {
        try validate(name, kind: "image", in: parent, r)
        let state = UploadState(name: name, upload: try api.images.beginUpload(name, r.caller))
        uploads.withLock { $0[name] = state }
        let node = Node.member(Collections.images.id, name)
        let meta = api.images.get(name, r.caller).map { imageMeta($0, uploadSize: 0) }
            ?? { var m = Meta.file(0, .readWrite, time: Date().timeIntervalSince1970, uid: r.caller.uid)
                 m.blockSize = 1 << 20; return m }()
        changed(.image, name)
        return (entry(node, meta, lookups: 1), OpenReply(handle: files.add(.upload(state)), directIO: true))
    }

    func openImage(_ name: String, node: Node, flags: OpenFlags, _ r: Request) throws(CloudError) -> OpenReply {
        if flags.isWrite {
            // Writing over an existing name: a new upload, if the cloud allows one.
            let state = UploadState(name: name, upload: try api.images.beginUpload(name, r.caller))
            uploads.withLock { $0[name] = state }
            changed(.image, name)
            return OpenReply(handle: files.add(.upload(state)), directIO: true)
        }
        guard let info = api.images.get(name, r.caller) else { throw CloudError(.noEntry, "no such image") }
        guard info.status == .active else {
            throw refuse(.busy, "image \(name) is \(info.status.rawValue), not active: its bytes cannot be read yet", node, r)
        }
        let fd = Glibc.open(info.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = Errno.current
            throw refuse(e == .noEntry ? .io : e, "image \(name): cannot open its bytes: \(e.name)", node, r)
        }
        // Active images never change (a replaced image has another identity, hence another
        // inode), so the kernel may keep its cached pages across opens.
        return OpenReply(handle: files.add(.descriptor(DescriptorHandle(path: info.path, fd: fd))), keepCache: true)
    }

    func flushUpload(_ u: UploadState, _ r: Request) throws(CloudError) {
        // `cat x > /images/y` in bash opens, dup2s and closes the first descriptor before
        // any byte arrives: a flush of an empty upload neither commits nor aborts.
        guard !u.isAborted, u.upload.size > 0 else { return }
        if let how = WriterCheck.killed(pid: r.caller.pid) {
            u.abort("upload interrupted (writer \(how))")
            changed(.image, u.name)
            return
        }
        if u.upload.isCommitted { return }
        do {
            try u.upload.commit()
            changed(.image, u.name)
        } catch {
            u.abort(error.reason)
            changed(.image, u.name)
            throw error
        }
    }

    func releaseUpload(_ u: UploadState) {
        uploads.withLock { m in if m[u.name] === u { m[u.name] = nil } }
        if !u.upload.isCommitted {
            u.abort(u.upload.size == 0 ? "upload closed without data" : "upload closed before it was committed")
        }
        changed(.image, u.name)
    }
}

/// Tells a writer that died from one that closed its file: the FLUSH of a process killed
/// mid-`cp` comes from the dying process itself.
enum WriterCheck {
    /// PF_EXITING in /proc/PID/stat's flags field.
    static let exiting: UInt64 = 0x4

    /// "killed by signal N" / "exited with status N" when `pid` is exiting abnormally
    /// (flags field 9 has PF_EXITING and exit_code, field 52, has a signal or a status).
    static func killed(pid: Int32) -> String? {
        guard pid > 0, let stat = read("/proc/\(pid)/stat"),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after "pid (comm)" start with field 3 (state).
        let fields = stat[stat.index(after: close)...].split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count >= 50, let flags = UInt64(fields[9 - 3]), let code = Int(fields[52 - 3]),
              flags & exiting != 0 else { return nil }
        if code & 0x7f != 0 { return "killed by signal \(code & 0x7f)" }
        if (code >> 8) & 0xff != 0 { return "exited with status \((code >> 8) & 0xff)" }
        return nil
    }

    private static func read(_ path: String) -> String? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { _ = Glibc.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return String(decoding: buffer[..<n], as: UTF8.self)
    }
}
