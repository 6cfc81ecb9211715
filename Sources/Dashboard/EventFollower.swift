#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// Follows `/events` as `tail -f` does (the file answers poll when it grows) on one
/// thread, and hands each new line to every subscriber: the feed behind the dashboard's
/// server-sent events, so pages update from the cloud's own log, not by polling pages.
final class EventFollower: Sendable {
    private let tree: MountedTree
    private let subscribers = Mutex<[UInt64: AsyncStream<String>.Continuation]>([:])
    private let nextID = Atomic<UInt64>(0)
    private let started = Atomic<Bool>(false)

    init(tree: MountedTree) { self.tree = tree }

    /// A stream of the lines appended from now on; it ends when the consumer stops.
    func subscribe() -> AsyncStream<String> {
        startIfNeeded()
        let id = nextID.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(4096))
        continuation.onTermination = { [weak self] _ in _ = self?.subscribers.withLock { $0.removeValue(forKey: id) } }
        subscribers.withLock { $0[id] = continuation }
        return stream
    }

    private func publish(_ line: String) {
        for c in subscribers.withLock({ Array($0.values) }) { c.yield(line) }
    }

    private func startIfNeeded() {
        guard started.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        let thread = Thread { [self] in follow() }
        thread.name = "cloudfs-dashboard-events"
        thread.start()
    }

    /// Reads from the current end, then waits in poll for more; reopens if the mount
    /// goes away and comes back.
    private func follow() {
        while true {
            let fd = open(tree.path("events"), O_RDONLY | O_CLOEXEC)
            if fd < 0 { sleep(1); continue }
            var st = stat()
            var offset = fstat(fd, &st) == 0 ? Int(st.st_size) : 0
            var partial: [UInt8] = []
            var quiet = 0
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
                if n < 0 { if errno == EINTR { continue }; break }
                if n > 0 {
                    offset += n
                    partial.append(contentsOf: buf[0..<n])
                    while let nl = partial.firstIndex(of: UInt8(ascii: "\n")) {
                        publish(String(decoding: partial[..<nl], as: UTF8.self))
                        partial.removeSubrange(...nl)
                    }
                    continue
                }
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&p, 1, 1000)
                if ready < 0, errno != EINTR { break }
                // A blank line now and then lets streams notice a reader that went away.
                if ready == 0 { quiet += 1; if quiet % 15 == 0 { publish("") } } else { quiet = 0 }
            }
            close(fd)
            sleep(1)
        }
    }
}
