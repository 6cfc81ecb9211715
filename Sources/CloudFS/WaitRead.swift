import CloudCore
import FuseKit
import Synchronization

/// An open `wait` file: the answer, once the instance became stable, for the reads that
/// follow the first (`cat` reads again at offset 7 and must see end of file).
final class WaitState: Sendable {
    let instance: String
    private let answer = Mutex<[UInt8]?>(nil)
    init(instance: String) { self.instance = instance }
    var result: [UInt8]? { answer.withLock { $0 } }
    func set(_ bytes: [UInt8]) { answer.withLock { $0 = bytes } }
}

/// `cat /instances/NAME/wait` (SPEC: "a read blocks until the instance is in a stable
/// state, then returns that status line"). The cloud's `waitUntilStable` completion
/// answers the READ: at once in the handler when the instance is already stable, else
/// later from the thread whose commit made it stable (the handler defers), and a
/// FUSE_INTERRUPT (the reader got a signal, e.g. from `timeout`) cancels the wait and
/// answers `EINTR`. An instance deleted while waited for answers `ENOENT`.
extension CloudFileSystem {
    func readWait(_ w: WaitState, offset: Int64, size: Int, _ r: Request) -> ReadReply {
        if let done = w.result { return .bytes(Self.slice(done, offset, size)) }
        let token = api.instances.waitUntilStable(w.instance, r.caller) { info in
            guard let info else { return r.reply(error: .noEntry) }
            let bytes = Array("\(info.status.rawValue)\n".utf8)
            w.set(bytes)
            r.reply(bytes: Self.slice(bytes, offset, size))
        }
        r.onInterrupt {
            token.cancel()
            r.reply(error: .interrupted)
        }
        return .deferred
    }
}
