import CloudCore
import FuseKit

/// `instances/NAME/tty`: the guest's serial console as a stream file. A READ is answered
/// when the guest writes something (deferred, like `wait`); an interrupt (the reader's
/// signal) answers EINTR; the end of the console (the guest stopped) reads as end of file.
/// WRITEs are keystrokes. `cloudfs console` is a terminal on this file.
///
/// The open files of one instance's `tty` share one console session: a terminal opens it
/// twice, reading from one descriptor while it writes to the other (a regular file's
/// position lock would make a write wait for the read blocked on the same descriptor).
extension CloudFileSystem {
    func attachConsole(_ name: String, _ r: Request) throws(CloudError) -> any ConsoleStream {
        if let shared = consoles.withLock({ c -> (any ConsoleStream)? in
            guard let e = c[name], !e.stream.hasEnded else { return nil }
            c[name]!.opens += 1
            return e.stream
        }) { return shared }
        let stream = try api.instances.openConsole(name, r.caller)
        let replaced = consoles.withLock { c -> (any ConsoleStream)? in
            let old = c[name]?.stream
            c[name] = (stream, 1)
            return old
        }
        replaced?.close()
        return stream
    }

    func detachConsole(_ name: String) {
        let last = consoles.withLock { c -> (any ConsoleStream)? in
            guard var e = c[name] else { return nil }
            e.opens -= 1
            if e.opens > 0 { c[name] = e; return nil }
            c[name] = nil
            return e.stream
        }
        last?.close()
    }

    func readConsole(_ stream: any ConsoleStream, size: Int, _ r: Request) -> ReadReply {
        let token = stream.read(max: size) { bytes in r.reply(bytes: (bytes ?? [])[...]) }
        r.onInterrupt {
            token.cancel()
            r.reply(error: .interrupted)
        }
        return .deferred
    }
}
