import ArgumentParser
import Foundation

/// `cloudfs console MOUNTPOINT/instances/NAME`: the terminal on the guest's serial console
/// (libvirt's console stream, through the tree's `tty` file), like `virsh console`.
/// Ctrl-] detaches; the terminal is put back as it was.
struct Console: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Attach the terminal to an instance's serial console (Ctrl-] detaches).")

    @Argument(help: "The instance's directory in a mounted cloud, e.g. /cloud/instances/web1.")
    var instance: String

    static let escape: UInt8 = 0x1d   // Ctrl-]

    func run() throws {
        try reportingFailures {
            let tty = (instance.hasSuffix("/") ? String(instance.dropLast()) : instance) + "/tty"
            // Two descriptors on one session: output is read from one while keys are written
            // to the other (one descriptor would serialize them on its file position lock).
            let fd = open(tty, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let reason = String(cString: strerror(errno))
                throw ValidationFailure(FileManager.default.fileExists(atPath: tty)
                    ? "cannot attach to \(tty): \(reason) (the reason is in /events and the instance's fault)"
                    : "\(instance) is not an instance directory of a mounted cloud (no \(tty))")
            }
            let keys = open(tty, O_WRONLY | O_CLOEXEC)
            guard keys >= 0 else { throw ValidationFailure("cannot write to \(tty): \(String(cString: strerror(errno)))") }
            let name = URL(fileURLWithPath: instance).lastPathComponent
            FileHandle.standardError.write(Data("Connected to \(name) (escape character is ^])\r\n".utf8))
            let terminal = RawTerminal()
            defer { terminal.restore(); close(keys) }
            // The guest's output, as it comes, until the console ends.
            let output = Thread {
                var buf = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = read(fd, &buf, buf.count)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    _ = buf.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, n) }
                }
                terminal.restore()
                Foundation.exit(0)
            }
            output.start()
            var key = [UInt8](repeating: 0, count: 1024)
            while true {
                let n = read(STDIN_FILENO, &key, key.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }   // end of input: detach
                let bytes = key[0..<n]
                if let at = bytes.firstIndex(of: Self.escape) {
                    if at > 0 { _ = Array(bytes[..<at]).withUnsafeBytes { write(keys, $0.baseAddress, $0.count) } }
                    break
                }
                if Array(bytes).withUnsafeBytes({ write(keys, $0.baseAddress, $0.count) }) < 0 { break }
            }
            FileHandle.standardError.write(Data("\r\nDetached from \(name)\r\n".utf8))
        }
    }
}

/// The terminal in raw mode while attached (keys go to the guest as typed), and back.
final class RawTerminal: @unchecked Sendable {
    // @unchecked: set once at init; restore is idempotent under the lock.
    private var saved = termios()
    private var active = false
    private let lock = NSLock()

    init() {
        guard isatty(STDIN_FILENO) == 1, tcgetattr(STDIN_FILENO, &saved) == 0 else { return }
        var raw = saved
        cfmakeraw(&raw)
        active = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0
    }

    func restore() {
        lock.lock(); defer { lock.unlock() }
        if active { _ = tcsetattr(STDIN_FILENO, TCSANOW, &saved); active = false }
    }
}
