import CFuse
import CloudCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One FUSE request (`fuse_req_t`): who sent it, and the right to reply to it exactly once.
///
/// FuseKit replies for the handler when a handler method returns. A READ answered with
/// `ReadReply.deferred` keeps its `Request` and replies later from any thread with
/// `reply(bytes:)` or `reply(error:)`; a second reply is ignored, and a reply after the
/// session ended is dropped (the session answered the request with `EINTR` as it stopped).
public final class Request: @unchecked Sendable {
    // Lock order: SessionCore.registry, then Request.state. The C request is only touched
    // by the thread that won `claim()`, under SessionCore's liveness gate.
    private struct State {
        var replied = false
        var interrupted = false
        var onInterrupt: (@Sendable () -> Void)?
    }

    let raw: OpaquePointer
    let core: SessionCore
    private let state = Mutex(State())

    /// The credentials of the calling process (`fuse_req_ctx`): uid, gid and pid (the
    /// thread group id of the caller, in the mounting process's pid namespace).
    public let caller: Caller

    init(_ raw: OpaquePointer, core: SessionCore) {
        self.raw = raw
        self.core = core
        let ctx = fuse_req_ctx(raw)!.pointee
        caller = Caller(uid: ctx.uid, gid: ctx.gid, pid: ctx.pid)
    }

    /// True once the kernel sent FUSE_INTERRUPT for this request (the caller got a signal).
    public var isInterrupted: Bool { state.withLock { $0.interrupted } }

    /// True once the request has been answered.
    public var isAnswered: Bool { state.withLock { $0.replied } }

    /// Registers `handler` to run once when the kernel interrupts this request (FUSE_INTERRUPT,
    /// e.g. `timeout` sent the reader a signal). Runs at once if the interrupt already
    /// arrived. The handler usually cancels the pending work and calls
    /// `reply(error: .interrupted)`. Only deferred READs receive interrupts.
    public func onInterrupt(_ handler: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { s -> Bool in
            if s.replied { return false }
            if s.interrupted { return true }
            s.onInterrupt = handler
            return false
        }
        if runNow { handler() }
    }

    /// Called by the C interrupt callback.
    func interrupt() {
        let handler = state.withLock { s -> (@Sendable () -> Void)? in
            if s.replied || s.interrupted { return nil }
            s.interrupted = true
            let h = s.onInterrupt
            s.onInterrupt = nil
            return h
        }
        handler?()
    }

    /// Takes the one right to reply. False when someone already replied.
    func claim() -> Bool {
        let won = state.withLock { s -> Bool in
            if s.replied { return false }
            s.replied = true
            s.onInterrupt = nil
            return true
        }
        if won { core.unregister(self) }
        return won
    }

    /// Claims the request and, while the session is alive, runs `send` with the C request.
    /// `send` must call exactly one `fuse_reply_*`.
    func answer(_ send: (OpaquePointer) -> Void) {
        guard claim() else { return }
        core.withLiveSession { _ in send(raw) }
    }

    // MARK: replies available to handlers (deferred READ)

    /// Replies to a READ with `bytes` (`fuse_reply_buf`).
    public func reply(bytes: ArraySlice<UInt8>) {
        answer { req in
            bytes.withUnsafeBytes { b in
                _ = fuse_reply_buf(req, b.baseAddress?.assumingMemoryBound(to: CChar.self), b.count)
            }
        }
    }

    /// Replies to a READ with `bytes`.
    public func reply(bytes: [UInt8]) { reply(bytes: bytes[...]) }

    /// Replies with an error (`fuse_reply_err`).
    public func reply(error: Errno) {
        answer { req in _ = fuse_reply_err(req, error.rawValue) }
    }

    // MARK: internal typed replies

    func replyEntry(_ entry: Entry) {
        answer { req in
            var p = entry.param
            _ = fuse_reply_entry(req, &p)
        }
    }

    func replyCreate(_ entry: Entry, _ open: OpenReply, _ fi: UnsafeMutablePointer<fuse_file_info>) {
        answer { req in
            var p = entry.param
            open.fill(fi)
            _ = fuse_reply_create(req, &p, fi)
        }
    }

    func replyAttr(_ a: AttributeReply) {
        answer { req in
            var st = a.attributes.stat
            _ = fuse_reply_attr(req, &st, a.timeout)
        }
    }

    func replyOpen(_ open: OpenReply, _ fi: UnsafeMutablePointer<fuse_file_info>) {
        answer { req in
            open.fill(fi)
            _ = fuse_reply_open(req, fi)
        }
    }

    func replyWrite(_ count: Int) { answer { req in _ = fuse_reply_write(req, count) } }

    func replyReadlink(_ target: String) { answer { req in _ = fuse_reply_readlink(req, target) } }

    func replyOK() { answer { req in _ = fuse_reply_err(req, 0) } }

    func replyNone() { answer { req in fuse_reply_none(req) } }

    func replyXattrSize(_ size: Int) { answer { req in _ = fuse_reply_xattr(req, size) } }

    func replyPoll(_ events: PollEvents) { answer { req in _ = fuse_reply_poll(req, events.rawValue) } }

    func replyStatfs(_ s: FileSystemStatistics) {
        answer { req in
            var v = s.statvfs
            _ = fuse_reply_statfs(req, &v)
        }
    }

    func replyBuffer(_ pointer: UnsafeRawPointer?, _ count: Int) {
        answer { req in _ = fuse_reply_buf(req, pointer?.assumingMemoryBound(to: CChar.self), count) }
    }

    /// Replies to a READ with up to `count` bytes `pread` from `fd` at `offset`.
    func replyFile(descriptor fd: Int32, offset: Int64, count: Int) {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 4096)
        defer { buffer.deallocate() }
        var done = 0
        while done < count {
            let n = pread(fd, buffer + done, count - done, off_t(offset) + off_t(done))
            if n < 0 {
                let e = Errno.current
                if e == .interrupted { continue }
                reply(error: e)
                return
            }
            if n == 0 { break }
            done += n
        }
        replyBuffer(UnsafeRawPointer(buffer), done)
    }
}

/// A poll wake-up the kernel asked for (`struct fuse_pollhandle`). Call `notify()` once when
/// the file becomes ready (`fuse_lowlevel_notify_poll`); the handle is released after that,
/// or when it is dropped without notifying.
public final class PollHandle: @unchecked Sendable {
    private let raw: OpaquePointer
    private let used = Mutex(false)
    private let core: SessionCore

    init(_ raw: OpaquePointer, core: SessionCore) {
        self.raw = raw
        self.core = core
    }

    /// Wakes the poller (at most once; later calls do nothing).
    public func notify() {
        guard used.withLock({ u -> Bool in defer { u = true }; return !u }) else { return }
        core.withLiveSession { _ in _ = fuse_lowlevel_notify_poll(raw) }
    }

    deinit {
        fuse_pollhandle_destroy(raw)  // a plain free(3): safe even after the session ended
    }
}
