import CloudCore
import CloudStore
import Foundation
import Synchronization

/// The serial console of guests on remote hosts (Nova's console log, `get_console_output`,
/// for a compute node that shares no files with the controller): one libvirt console
/// stream per running guest, whose bytes are appended to the controller's console log
/// (`instances/NAME/console`) and handed to `cloudfs console` sessions, which share it:
/// libvirt gives a domain's console to one stream at a time.
final class ConsoleRecorder: Sendable {
    private let core: EngineCore
    private let hosts: any HostConnections
    private let disks: HostDisks
    private let queue = DispatchQueue(label: "cloudfs.engine.consoles")

    /// One recorded console: the stream, the log file, and the sessions reading it.
    private final class Recording: @unchecked Sendable {
        // @unchecked: `taps` and `log` are guarded by `lock`; the stream is Sendable.
        let stream: any ConsoleStream
        /// The host whose domain the stream reads.
        let host: String
        let lock = NSLock()
        var log: Int32
        var taps: [ObjectIdentifier: ConsoleTap] = [:]
        init(stream: any ConsoleStream, host: String, log: Int32) { self.stream = stream; self.host = host; self.log = log }
    }
    private let recordings = Mutex<[String: Recording]>([:])

    init(core: EngineCore, hosts: any HostConnections, disks: HostDisks) {
        self.core = core; self.hosts = hosts; self.disks = disks
    }

    /// Sweeps every second: each running guest on a remote host gets its recording.
    func start() {
        queue.asyncAfter(deadline: .now() + 1) { [weak self] in
            guard let self else { return }
            self.sweep()
            self.start()
        }
    }

    /// Where the guest's console is: its host, except while a live migration runs, when
    /// `host` already names the destination, whose incoming domain has no console yet,
    /// and the guest still runs on the source (`oldHost`).
    static func host(of r: InstanceRecord) -> String? {
        r.taskState == .migrating ? (r.oldHost ?? r.host) : r.host
    }

    /// Opens the recordings that are missing now, and replaces those reading another
    /// host than the one the guest runs on (a move ended while a stream stayed open).
    func sweep() {
        let remote = disks.remoteHosts()
        guard !remote.isEmpty else { return }
        let running = core.catalog.withLock { c in
            c.instances.values.compactMap { r -> (String, String)? in
                guard let at = Self.host(of: r), remote.contains(at),
                      r.powerState == .running || r.powerState == .paused else { return nil }
                return (r.id, at)
            }
        }
        for (id, host) in running where recordings.withLock({ $0[id]?.host != host }) {
            _ = try? record(id, host: host)
        }
    }

    /// A session on the guest's console, sharing the recording's stream.
    func openSession(_ id: String, host: String) throws(CloudError) -> any ConsoleStream {
        let rec = try record(id, host: host)
        let tap = ConsoleTap(rec.stream)
        rec.lock.lock(); rec.taps[ObjectIdentifier(tap)] = tap; rec.lock.unlock()
        tap.onClose = { [weak rec, weak tap] in
            guard let rec, let tap else { return }
            rec.lock.lock(); rec.taps[ObjectIdentifier(tap)] = nil; rec.lock.unlock()
        }
        return tap
    }

    /// The recording of `id`, opening the console stream when there is none.
    private func record(_ id: String, host: String) throws(CloudError) -> Recording {
        if let rec = recordings.withLock({ $0[id] }), !rec.stream.hasEnded, rec.host == host { return rec }
        guard let conn = hosts.connection(forHost: host) else { throw CloudError.io("host \(host) is not connected") }
        let stream = try conn.openConsole(uuid: id)
        let path = core.consolePath(id)
        let dir = (path as NSString).deletingLastPathComponent
        if mkdir(dir, 0o755) != 0 && errno != EEXIST {
            stream.close()
            throw CloudError.io("cannot create \(dir): \(String(cString: strerror(errno)))")
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            stream.close()
            throw CloudError.io("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        let rec = Recording(stream: stream, host: host, log: fd)
        let previous = recordings.withLock { r -> Recording? in defer { r[id] = rec }; return r[id] }
        previous?.stream.close()
        pump(rec, id: id)
        return rec
    }

    /// Reads the stream until it ends, appending to the log and feeding the sessions.
    private func pump(_ rec: Recording, id: String) {
        _ = rec.stream.read(max: 65536) { [weak self] bytes in
            guard let self else { return }
            rec.lock.lock()
            let taps = Array(rec.taps.values)
            if let bytes {
                bytes.withUnsafeBytes { p in _ = write(rec.log, p.baseAddress, p.count) }
                rec.lock.unlock()
                for t in taps { t.deliver(bytes) }
                self.pump(rec, id: id)
            } else {
                if rec.log >= 0 { close(rec.log); rec.log = -1 }
                rec.lock.unlock()
                for t in taps { t.end() }
                self.recordings.withLock { r in if r[id] === rec { r[id] = nil } }
            }
        }
    }

    /// Closes every recording (the engine is shutting down).
    func stopAll() {
        let all = recordings.withLock { r -> [Recording] in defer { r.removeAll() }; return Array(r.values) }
        for rec in all { rec.stream.close() }
    }
}

/// One `cloudfs console` session on a recorded console: its own buffer of what the guest
/// wrote since it opened; keystrokes go to the shared stream.
final class ConsoleTap: ConsoleStream, @unchecked Sendable {
    // @unchecked: every field is guarded by `lock`.
    private let stream: any ConsoleStream
    private let lock = NSLock()
    private var buffer: [UInt8] = []
    private var ended = false
    private var reader: (id: UInt64, max: Int, deliver: @Sendable ([UInt8]?) -> Void)?
    private var nextID: UInt64 = 0
    var onClose: (@Sendable () -> Void)?

    init(_ stream: any ConsoleStream) { self.stream = stream }

    func deliver(_ bytes: [UInt8]) {
        lock.lock()
        buffer += bytes
        guard let r = reader else { lock.unlock(); return }
        reader = nil
        let out = Array(buffer.prefix(r.max))
        buffer.removeFirst(out.count)
        lock.unlock()
        r.deliver(out)
    }

    func end() {
        lock.lock()
        ended = true
        let r = reader
        reader = nil
        lock.unlock()
        r?.deliver(nil)
    }

    func read(max: Int, _ deliver: @escaping @Sendable ([UInt8]?) -> Void) -> WaitToken {
        lock.lock()
        if !buffer.isEmpty {
            let out = Array(buffer.prefix(max))
            buffer.removeFirst(out.count)
            lock.unlock()
            deliver(out)
            return WaitToken {}
        }
        if ended { lock.unlock(); deliver(nil); return WaitToken {} }
        nextID += 1
        let id = nextID
        reader = (id, max, deliver)
        lock.unlock()
        return WaitToken { [weak self] in
            guard let self else { return }
            self.lock.lock(); if self.reader?.id == id { self.reader = nil }; self.lock.unlock()
        }
    }

    func write(_ bytes: [UInt8]) throws(CloudError) {
        if hasEnded { throw CloudError(.io, "the console ended (the guest is not running)") }
        try stream.write(bytes)
    }

    /// Ends this session only; the recording goes on.
    func close() {
        lock.lock()
        let first = !ended
        ended = true
        let r = reader
        reader = nil
        let hook = onClose
        lock.unlock()
        r?.deliver(nil)
        if first { hook?() }
    }

    var hasEnded: Bool { lock.lock(); defer { lock.unlock() }; return ended }
}
