import CloudCore
#if canImport(Glibc)
import Glibc
#endif

/// Runs host networking tools (`ip`, `nft`, `dnsmasq`, `sysctl`) to completion with
/// posix_spawn, optionally behind a prefix such as `nsenter --net=/var/run/netns/NAME` so
/// that everything happens inside one network namespace. Output goes to unlinked temporary
/// files, not pipes: a daemon that keeps its inherited stdout open cannot block the caller.
public struct CommandRunner: Sendable {
    /// What a finished command left behind.
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Words put before every command (empty: run commands directly).
    public var prefix: [String]

    public init(prefix: [String] = []) { self.prefix = prefix }

    /// A runner whose commands run in the named network namespace (`ip netns add NAME`),
    /// through `nsenter --net=/var/run/netns/NAME` (which keeps the mount namespace).
    public static func inNetworkNamespace(_ name: String) -> CommandRunner {
        CommandRunner(prefix: ["nsenter", "--net=/var/run/netns/\(name)"])
    }

    /// Runs `argv` and waits for it. Throws `EIO` only when it cannot be started.
    public func run(_ argv: [String]) throws(CloudError) -> Result {
        let words = prefix + argv
        guard let tool = words.first, let path = Self.resolve(tool) else {
            throw CloudError.io("\(argv.first ?? "command") not found (is the package installed?)")
        }
        let out = try Self.scratchFile(), err = try Self.scratchFile()
        defer { close(out); close(err) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out, 1)
        posix_spawn_file_actions_adddup2(&actions, err, 2)
        // Other inherited descriptors stay open (Swift does not expose glibc's closefrom
        // action); the commands are short-lived, and dnsmasq closes them itself at startup.
        let cargs: [UnsafeMutablePointer<CChar>?] = ([path] + words.dropFirst()).map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        // A daemon (cloudfs's own) blocks SIGHUP/SIGTERM for its sigwait thread and ignores
        // SIGPIPE; children inherit both. dnsmasq would then never see the SIGHUP that
        // reloads its hosts file: start every command with no blocked signal and default
        // handlers.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), defaults = sigset_t()
        sigemptyset(&none)
        sigemptyset(&defaults)
        for sig in [SIGHUP, SIGINT, SIGTERM, SIGPIPE, SIGCHLD] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attr, cargs, environ)
        guard rc == 0 else { throw CloudError.io("cannot run \(path): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw CloudError.io("waitpid for \(path) failed: \(String(cString: strerror(errno)))") }
        }
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code, stdout: Self.contents(out), stderr: Self.contents(err))
    }

    /// Runs `argv` and returns its stdout; throws `EIO` carrying the command and its stderr
    /// when it exits non-zero.
    @discardableResult
    public func check(_ argv: [String]) throws(CloudError) -> String {
        let r = try run(argv)
        guard r.status == 0 else {
            let why = r.stderr.trimmingTrailingNewlines
            throw CloudError.io("`\(argv.joined(separator: " "))` failed with status \(r.status)\(why.isEmpty ? "" : ": \(why)")")
        }
        return r.stdout
    }

    /// `name` itself when it holds a `/`, else the first executable of that name on PATH or
    /// in the system directories (where ip, nft and dnsmasq live).
    static func resolve(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = getenv("PATH").map { String(cString: $0) } ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        return dirs.map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }

    private static func scratchFile() throws(CloudError) -> Int32 {
        var template = Array("/tmp/cloudfs-cmd-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw CloudError.io("cannot create a temporary file: \(String(cString: strerror(errno)))") }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        return fd
    }

    private static func contents(_ fd: Int32) -> String {
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        var offset: off_t = 0
        while true {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            bytes += buf[0..<n]
            offset += off_t(n)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension String {
    var trimmingTrailingNewlines: String {
        var s = Substring(self)
        while s.last?.isNewline == true { s = s.dropLast() }
        return String(s)
    }
}
