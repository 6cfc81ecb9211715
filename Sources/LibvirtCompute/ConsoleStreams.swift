import CLibvirt
import CloudCore
import Foundation
import Synchronization

/// A domain's serial console as a libvirt stream (virDomainOpenConsole, as `virsh
/// console` opens it): one thread receives what the guest writes into a buffer that reads
/// are served from; keystrokes are sent as they come. The stream is non-blocking: a
/// blocking receive holds the stream's lock and would keep every send waiting.
final class LibvirtConsoleStream: ConsoleStream, @unchecked Sendable {
    // @unchecked: the stream pointer is used under libvirt's own locking; state is a Mutex.
    private let stream: OpaquePointer
    private struct State {
        var buffer: [UInt8] = []
        var ended = false
        var reader: (id: UInt64, max: Int, deliver: @Sendable ([UInt8]?) -> Void)?
        var nextID: UInt64 = 0
        var freed = false
    }
    private let state = Mutex(State())

    init(stream: OpaquePointer) {
        self.stream = stream
        let t = Thread { [self] in receive() }
        t.name = "cloudfs-console"
        t.start()
    }

    private func receive() {
        var chunk = [CChar](repeating: 0, count: 4096)
        while !state.withLock({ $0.ended }) {
            let n = chunk.withUnsafeMutableBufferPointer { virStreamRecv(stream, $0.baseAddress, $0.count) }
            if n == -2 { usleep(10_000); continue }   // nothing yet
            if n <= 0 { break }   // 0: the guest's side ended; -1: aborted or failed
            let bytes = chunk[0..<Int(n)].map { UInt8(bitPattern: $0) }
            let answer = state.withLock { s -> (@Sendable ([UInt8]?) -> Void, [UInt8])? in
                s.buffer += bytes
                guard let r = s.reader else { return nil }
                s.reader = nil
                let out = Array(s.buffer.prefix(r.max))
                s.buffer.removeFirst(out.count)
                return (r.deliver, out)
            }
            if let (deliver, out) = answer { deliver(out) }
        }
        let waiting = state.withLock { s -> (@Sendable ([UInt8]?) -> Void)? in
            s.ended = true
            defer { s.reader = nil }
            return s.reader?.deliver
        }
        waiting?(nil)
        free()
    }

    func read(max: Int, _ deliver: @escaping @Sendable ([UInt8]?) -> Void) -> WaitToken {
        let now = state.withLock { s -> [UInt8]?? in
            if !s.buffer.isEmpty {
                let out = Array(s.buffer.prefix(max))
                s.buffer.removeFirst(out.count)
                return .some(out)
            }
            if s.ended { return .some(nil) }
            s.nextID += 1
            s.reader = (s.nextID, max, deliver)
            return .none
        }
        if let now { deliver(now); return WaitToken {} }
        let id = state.withLock { $0.nextID }
        return WaitToken { [weak self] in self?.state.withLock { s in if s.reader?.id == id { s.reader = nil } } }
    }

    func write(_ bytes: [UInt8]) throws(CloudError) {
        if state.withLock({ $0.ended }) { throw CloudError(.io, "the console ended (the guest is not running)") }
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: CChar.self) { virStreamSend(stream, $0.baseAddress, $0.count) }
            }
            if n == -2 { usleep(10_000); continue }   // the guest's side is full for now
            guard n > 0 else { throw CloudError(.io, "cannot write to the console: \(Libvirt.lastMessage())") }
            sent += Int(n)
        }
    }

    var hasEnded: Bool { state.withLock { $0.ended } }

    func close() {
        let first = state.withLock { s -> Bool in
            if s.ended { return false }
            s.ended = true
            return true
        }
        // The receiving thread sees `ended`, answers a waiting read, and frees the stream.
        if first { virStreamAbort(stream) }
    }

    private func free() {
        let first = state.withLock { s -> Bool in defer { s.freed = true }; return !s.freed }
        if first { virStreamFree(stream) }
    }
}

extension LibvirtConnection {
    public func openConsole(uuid: String) throws(CloudError) -> any ConsoleStream {
        // libvirt's test driver has no character devices to attach to.
        if flavor == .test { throw CloudError(.notSupported, "\(uri) has no serial consoles") }
        return try Libvirt.translating { () throws(LibvirtError) -> any ConsoleStream in
            guard let dom = try lookupRaw(uuid: uuid) else {
                throw LibvirtError(operation: "open the console of domain \(uuid)", code: Int32(VIR_ERR_NO_DOMAIN.rawValue),
                                   message: "no domain with this uuid")
            }
            defer { virDomainFree(dom) }
            let name = String(cString: virDomainGetName(dom))
            let st = try Libvirt.call("make a stream for the console of \(name)") {
                virStreamNew(rawHandle, UInt32(VIR_STREAM_NONBLOCK.rawValue))
            }
            do throws(LibvirtError) {
                // FORCE: a new session takes the console over from an older one, as virsh's --force.
                try Libvirt.check("open the console of domain \(name)") {
                    virDomainOpenConsole(dom, nil, st, UInt32(VIR_DOMAIN_CONSOLE_FORCE.rawValue))
                }
            } catch {
                virStreamFree(st)
                throw error
            }
            return LibvirtConsoleStream(stream: st)
        }
    }
}
