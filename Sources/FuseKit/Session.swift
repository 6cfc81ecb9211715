import CFuse
import CloudCore
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A mounted FUSE file system (`struct fuse_session`): `mount()`, then `run()` on a thread
/// of its own until `exit()` or an external unmount (`fusermount3 -u`, `umount`).
///
/// ```swift
/// let session = FuseSession(mountpoint: "/cloud", options: .init(allowOther: true), handler: fs)
/// try session.mount()
/// try session.run()          // blocks; another thread calls session.exit()
/// ```
/// Signal handling is the caller's business: block signals, wait for them elsewhere, and
/// call `exit()`.
public final class FuseSession: Sendable {
    /// Mount options (`-o ...`) and loop settings.
    public struct Options: Sendable {
        /// `-o allow_other`: users other than the mounter may enter the mount.
        public var allowOther: Bool
        /// `-o default_permissions`: the kernel checks the modes the tree reports.
        public var defaultPermissions: Bool
        /// `-o fsname=`: the source column of /proc/mounts.
        public var fsName: String
        /// `-o subtype=`: the type shows as `fuse.SUBTYPE`.
        public var subtype: String
        /// Further `-o` options, passed to libfuse as given (e.g. `ro`, `max_read=...`).
        public var extra: [String]
        /// `max_write` negotiated at FUSE_INIT (1 MiB lets `cp` send 1 MiB WRITEs).
        public var maxWrite: Int
        /// Use READDIRPLUS for every listing (false: the kernel decides, READDIRPLUS_AUTO).
        public var alwaysReaddirPlus: Bool
        /// Idle worker threads libfuse keeps around.
        public var maxIdleThreads: Int
        /// libfuse's `-d`: log every request to stderr.
        public var debug: Bool

        public init(allowOther: Bool = false, defaultPermissions: Bool = false,
                    fsName: String = "cloudfs", subtype: String = "cloudfs", extra: [String] = [],
                    maxWrite: Int = 1 << 20, alwaysReaddirPlus: Bool = true,
                    maxIdleThreads: Int = 10, debug: Bool = false) {
            self.allowOther = allowOther; self.defaultPermissions = defaultPermissions
            self.fsName = fsName; self.subtype = subtype; self.extra = extra
            self.maxWrite = maxWrite; self.alwaysReaddirPlus = alwaysReaddirPlus
            self.maxIdleThreads = maxIdleThreads; self.debug = debug
        }

        var optionString: String {
            var o = ["fsname=\(fsName)", "subtype=\(subtype)"]
            if allowOther { o.append("allow_other") }
            if defaultPermissions { o.append("default_permissions") }
            return (o + extra).joined(separator: ",")
        }
    }

    private enum Phase { case created, mounted, running, finished }

    /// The directory the file system is (to be) mounted on.
    public let mountpoint: String
    /// The options given at creation.
    public let options: Options
    let core: SessionCore
    private let phase = Mutex(Phase.created)
    /// `major:minor` of our mount, read from mountinfo right after mounting.
    private let device = Mutex<String?>(nil)
    private var canonicalMountpoint: String {
        guard let p = realpath(mountpoint, nil) else { return mountpoint }
        defer { free(p) }
        return String(cString: p)
    }

    /// Creates a session for `handler`; nothing happens until `mount()`.
    public init(mountpoint: String, options: Options = Options(), handler: any FuseHandler) {
        self.mountpoint = mountpoint
        self.options = options
        self.core = SessionCore(handler: handler, options: options)
    }

    deinit {
        // Mounted but never run: unmount, so no mount outlives the session object.
        if phase.withLock({ $0 == .mounted }), let se = core.sessionPointer { teardown(se) }
    }

    /// Creates the libfuse session (`fuse_session_new`) and mounts it (`fuse_session_mount`).
    /// Throws `EINVAL` for options libfuse refuses, or the mount's errno (`EPERM`,
    /// `ENOENT`, ...). Call once.
    public func mount() throws(CloudError) {
        try phase.withLock { p throws(CloudError) in
            guard p == .created else { throw CloudError(.busy, "session already mounted") }
            var argv = ["cloudfs", "-o", options.optionString]
            if options.debug { argv.append("-d") }
            var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
            defer { for a in cargs { free(a) } }
            let se: OpaquePointer? = cargs.withUnsafeMutableBufferPointer { buf in
                var args = fuse_args(argc: Int32(argv.count), argv: buf.baseAddress, allocated: 0)
                var ops = Operations.table()
                let s = cfuse_session_new(&args, &ops, MemoryLayout<fuse_lowlevel_ops>.size,
                                          Unmanaged.passUnretained(core).toOpaque())
                fuse_opt_free_args(&args)
                return s
            }
            guard let se else {
                throw CloudError(.invalid, "libfuse refused the options '\(options.optionString)'")
            }
            if fuse_session_mount(se, mountpoint) != 0 {
                let e = Errno.current
                fuse_session_destroy(se)
                throw CloudError(e == Errno(rawValue: 0) ? .io : e, "cannot mount FUSE on \(mountpoint)")
            }
            core.attach(se)
            device.withLock { $0 = MountTable.device(at: canonicalMountpoint) }
            p = .mounted
        }
    }

    /// Runs libfuse's multi-threaded loop (`fuse_session_loop_mt`) until `exit()` or an
    /// external unmount, then answers requests still pending with `EINTR`, unmounts and
    /// destroys the session. Throws `EIO` when the loop failed.
    public func run() throws(CloudError) {
        let go = phase.withLock { p -> Bool in
            guard p == .mounted else { return false }
            p = .running
            return true
        }
        guard go, let se = core.sessionPointer else { return }
        var rc: Int32 = 0
        if !core.exitRequested {
            rc = cfuse_session_loop_mt(se, 0, UInt32(options.maxIdleThreads))
        }
        teardown(se)
        phase.withLock { $0 = .finished }
        if rc < 0 { throw CloudError(Errno(rawValue: -rc), "FUSE loop failed") }
    }

    /// After the loop: answers what is pending, aborts the connection (so nothing waits on
    /// a loop that no longer runs), waits for replies and notifications in flight, then
    /// unmounts (`fuse_session_unmount`) and destroys the session.
    private func teardown(_ se: OpaquePointer) {
        core.close()
        abortConnection()
        let drained = core.drain(timeout: 5)
        fuse_session_unmount(se)
        // A notification still stuck in the kernel would use the session after free.
        if drained { fuse_session_destroy(se) }
    }

    /// Aborts our FUSE connection if it is still up: requests waiting in the kernel fail
    /// with ENOTCONN instead of waiting forever. As root, `umount2(MNT_FORCE|MNT_DETACH)`
    /// of our own mount (found by its device number; the kernel aborts the connection in
    /// `umount_begin`); otherwise fusectl's `abort` file when it is mounted.
    private func abortConnection() {
        guard let dev = device.withLock({ $0 }) else { return }
        if geteuid() == 0, MountTable.device(at: canonicalMountpoint) == dev {
            _ = umount2(canonicalMountpoint, Int32(MNT_FORCE | MNT_DETACH))
            return
        }
        let parts = dev.split(separator: ":").compactMap { UInt32($0) }
        guard parts.count == 2 else { return }
        let fd = Glibc.open("/sys/fs/fuse/connections/\(parts[0] << 20 | parts[1])/abort", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = Glibc.write(fd, "1", 1)
        _ = Glibc.close(fd)
    }

    /// Ends the loop and unmounts; safe from any thread (including a handler) and at any
    /// time; returns at once. `run()` returns shortly after. After an `exit()` before
    /// `run()`, `run()` only unmounts.
    public func exit() {
        core.requestExit()
        let running = phase.withLock { $0 == .running }
        guard running else { return }
        // libfuse's loop only notices the exit flag after its next request: a STATFS of our
        // own, from a short-lived thread (it would block until a worker answers it).
        let path = mountpoint
        let t = Thread {
            var s = statvfs()
            _ = statvfs(path, &s)
        }
        t.start()
    }

    /// Drops the kernel's cached attributes and data of `inode`, or its attributes alone
    /// (`fuse_lowlevel_notify_inval_inode`). Dropping data waits for pages a READ is
    /// filling, so call it from a thread that is not serving a FUSE request unless no READ
    /// of the inode can be in flight. Returns nil, or the errno (`ENOENT` when the kernel
    /// does not know the inode, which is normal).
    @discardableResult
    public func notifyInvalidate(inode: Inode, attributesOnly: Bool = false) -> Errno? {
        core.withLiveSession { se in
            let rc = fuse_lowlevel_notify_inval_inode(se, inode.rawValue, attributesOnly ? -1 : 0, 0)
            return rc == 0 ? nil : Errno(rawValue: -rc)
        } ?? .badFile
    }

    /// Drops the kernel's cached name `name` in directory `parent`
    /// (`fuse_lowlevel_notify_inval_entry`), so the next access looks it up again. Call
    /// from a thread that is not serving a FUSE request (the kernel may wait for one).
    @discardableResult
    public func notifyInvalidateEntry(parent: Inode, name: String) -> Errno? {
        core.withLiveSession { se in
            let rc = name.withCString { fuse_lowlevel_notify_inval_entry(se, parent.rawValue, $0, strlen($0)) }
            return rc == 0 ? nil : Errno(rawValue: -rc)
        } ?? .badFile
    }
}

/// What the C callbacks reach through `fuse_req_userdata`: the handler, the gate that keeps
/// late replies and notifications away from a closed session, and the deferred requests.
final class SessionCore: @unchecked Sendable {
    private struct Registry {
        var pending: [ObjectIdentifier: Request] = [:]
        var interruptible: [UInt: Request] = [:]
        var exitRequested = false
    }
    private struct Gate {
        var open = false
        var inFlight = 0
    }

    let handler: any FuseHandler
    let options: FuseSession.Options
    private(set) var sessionPointer: OpaquePointer?  // set once in attach, before the loop
    private let registry = Mutex(Registry())
    // Replies and notifications run inside the gate; teardown closes it, then waits for
    // the calls in flight (an invalidation may wait in the kernel until the connection is
    // aborted, so teardown aborts first and never waits holding a lock they need).
    private let gate = Mutex(Gate())

    init(handler: any FuseHandler, options: FuseSession.Options) {
        self.handler = handler
        self.options = options
    }

    func attach(_ se: OpaquePointer) {
        sessionPointer = se
        gate.withLock { $0.open = true }
    }

    /// Runs `body` with the session while it is open; nil once it is closing.
    func withLiveSession<T>(_ body: (OpaquePointer) -> T) -> T? {
        guard let se = sessionPointer, gate.withLock({ g -> Bool in
            guard g.open else { return false }
            g.inFlight += 1
            return true
        }) else { return nil }
        defer { gate.withLock { $0.inFlight -= 1 } }
        return body(se)
    }

    var exitRequested: Bool { registry.withLock { $0.exitRequested } }

    func requestExit() {
        registry.withLock { $0.exitRequested = true }
        _ = withLiveSession { se in fuse_session_exit(se) }
    }

    /// Teardown, step 1: no new replies or notifications; the deferred requests still
    /// pending are answered `EINTR` (their readers see an interrupted read).
    func close() {
        gate.withLock { $0.open = false }
        let pending = registry.withLock { r -> [Request] in
            let p = Array(r.pending.values)
            r.pending.removeAll()
            r.interruptible.removeAll()
            return p
        }
        for req in pending where req.claim() { _ = fuse_reply_err(req.raw, EINTR) }
    }

    /// Teardown, step 3: waits up to `timeout` seconds for replies and notifications in
    /// flight. False when one is still stuck (the session must then not be destroyed).
    func drain(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while gate.withLock({ $0.inFlight }) > 0 {
            if Date() > deadline { return false }
            usleep(1000)
        }
        return true
    }

    /// A handler deferred its reply: remember the request until it is answered.
    func park(_ req: Request) {
        registry.withLock { r in
            if !req.isAnswered { r.pending[ObjectIdentifier(req)] = req }
        }
    }

    /// Delivers FUSE_INTERRUPT for `req` to its Request (registered before the handler ran).
    func trackInterrupts(_ req: Request) {
        registry.withLock { $0.interruptible[UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(req.raw)))] = req }
        fuse_req_interrupt_func(req.raw, { raw, data in
            guard let raw, let data else { return }
            let core = Unmanaged<SessionCore>.fromOpaque(data).takeUnretainedValue()
            let key = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(raw)))
            let req = core.registry.withLock { $0.interruptible[key] }
            req?.interrupt()
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    /// The request was answered: forget it.
    func unregister(_ req: Request) {
        registry.withLock { r in
            r.pending.removeValue(forKey: ObjectIdentifier(req))
            let key = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(req.raw)))
            if r.interruptible[key] === req { r.interruptible.removeValue(forKey: key) }
        }
    }
}

/// Reads /proc/self/mountinfo (never the mount itself, which could wait for our own loop).
enum MountTable {
    /// The `major:minor` of the topmost mount at `path`, if any.
    static func device(at path: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        var found: String?
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count > 4, unescape(f[4]) == path { found = String(f[2]) }
        }
        return found
    }

    /// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
    static func unescape(_ s: Substring) -> String {
        guard s.contains("\\") else { return String(s) }
        var out = [UInt8]()
        var bytes = Array(s.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "\\"), bytes.count >= 3,
               let v = UInt8(String(decoding: bytes.prefix(3), as: UTF8.self), radix: 8) {
                out.append(v)
                bytes = bytes.dropFirst(3)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
