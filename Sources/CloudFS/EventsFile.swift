import CloudCore
import FuseKit
import Synchronization

/// An open `/events`: where its reader got to, for poll.
final class EventsReader: Sendable {
    /// The log this reader reads: the whole log for an admin, the caller's own view
    /// (their projects' lines) otherwise; fixed at open so offsets stay meaningful.
    let log: EventLog
    init(log: EventLog) { self.log = log }
    private let end = Mutex(0)
    var readEnd: Int { end.withLock { $0 } }
    func advance(to offset: Int) { end.withLock { $0 = max($0, offset) } }
}

/// `/events` (SPEC "/events"): an append-only log read by offset. Its size is the true
/// current size (attribute timeout 0), so `tail -f` sees it grow; poll reports it readable
/// when bytes exist past the reader's last read, and otherwise wakes the poller at the
/// next append (`EventLog.waitForAppend`), never by polling in this layer.
extension CloudFileSystem {
    func readEvents(_ reader: EventsReader, offset: Int64, size: Int) -> [UInt8] {
        guard offset >= 0 else { return [] }
        let bytes = reader.log.read(offset: Int(offset), count: size)
        reader.advance(to: Int(offset) + bytes.count)
        return bytes
    }

    func pollEvents(_ reader: EventsReader, _ handle: PollHandle?) -> PollEvents {
        let log = reader.log
        if reader.readEnd < log.size { return [.readable] }
        guard let handle else { return [] }
        let id = log.waitForAppend { handle.notify() }
        // An append between the size check and the registration must not be missed.
        if reader.readEnd < log.size {
            log.cancelWait(id)
            return [.readable]
        }
        return []
    }
}
