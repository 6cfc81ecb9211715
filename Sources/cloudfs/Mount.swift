import ArgumentParser
import CloudCore
import Foundation

/// `cloudfs mount MOUNTPOINT`: opens the state, connects the hosts, mounts the tree.
/// Without `--foreground` it returns once the tree is mounted and ready, like sshfs.
struct Mount: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Mount the cloud on MOUNTPOINT.")

    @Argument(help: "Directory to mount the cloud on.")
    var mountpoint: String

    @Option(help: "State directory (SQLite database, images, instance disks). Default: /var/lib/cloudfs for root.")
    var state: String?

    @Option(name: .customLong("host"), help: "Register this libvirt URI as a compute host (repeatable), instead of the default local host. E.g. test:///default, test:///abs/path/host.xml, qemu:///system.")
    var hosts: [String] = []

    @Option(help: "Hypervisor type for QEMU hosts: auto, kvm or qemu (TCG). Default: $CLOUDFS_VIRT_TYPE or auto.")
    var virtType: String?

    @Flag(help: "Stay in the foreground (logs to stderr).")
    var foreground = false

    @Flag(help: "Let other users access the mount (-o allow_other, with default_permissions).")
    var allowOther = false

    @Flag(help: "Apply the networks on this host: bridges, VLAN interfaces, dnsmasq, nftables rules and routes (nova-network's linux_net). Guests' NICs go on the networks' bridges. Off by default: nothing on the host is touched and guests get user-mode NICs.")
    var manageNetwork = false

    @Flag(help: .hidden)
    var daemonChild = false

    var stateDir: String {
        if let state { return absolutePath(state) }
        if getuid() == 0 { return "/var/lib/cloudfs" }
        return (ProcessInfo.processInfo.environment["HOME"] ?? "/tmp") + "/.local/share/cloudfs"
    }

    var resolvedVirtType: String {
        virtType ?? ProcessInfo.processInfo.environment["CLOUDFS_VIRT_TYPE"] ?? "auto"
    }

    func validate() throws {
        guard ["auto", "kvm", "qemu"].contains(resolvedVirtType) else {
            throw ValidationError("--virt-type must be auto, kvm or qemu (got '\(resolvedVirtType)')")
        }
        StaleMount.clear(mountpoint)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: mountpoint, isDirectory: &isDir), isDir.boolValue else {
            throw ValidationError("mount point \(mountpoint) is not a directory")
        }
        for h in hosts where !h.contains(":") {
            throw ValidationError("--host \(h) is not a libvirt URI (e.g. test:///default, qemu:///system)")
        }
    }

    func run() throws {
        if foreground || daemonChild {
            try Daemon(mountpoint: absolutePath(mountpoint), stateDir: stateDir, hostURIs: hosts,
                       virtType: resolvedVirtType, allowOther: allowOther, manageNetwork: manageNetwork,
                       daemonChild: daemonChild).run()
        } else {
            try Background.launch(stateDir: stateDir, mountpoint: absolutePath(mountpoint))
        }
    }
}

/// Starts the daemon as a detached child and waits until it reports the tree mounted.
enum Background {
    static func launch(stateDir: String, mountpoint: String) throws {
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
        let logPath = stateDir + "/cloudfs.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logPath) else { throw ValidationError("cannot write \(logPath)") }
        log.seekToEndOfFile()
        let ready = Pipe()
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var args = Array(CommandLine.arguments.dropFirst())
        args.append("--daemon-child")
        child.arguments = args
        child.standardInput = FileHandle.nullDevice
        child.standardOutput = ready
        child.standardError = log
        try child.run()
        var got = Data()
        while let chunk = try ready.fileHandleForReading.read(upToCount: 256), !chunk.isEmpty {
            got.append(chunk)
            if got.contains(UInt8(ascii: "\n")) { break }
        }
        let line = String(decoding: got, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if line.hasPrefix("ready") {
            print("cloudfs mounted on \(mountpoint) (state \(stateDir), log \(logPath))")
            return
        }
        child.waitUntilExit()
        let tail = (try? String(contentsOfFile: logPath, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
        FileHandle.standardError.write(Data("cloudfs: mount failed\n\(tail)\n".utf8))
        throw ExitCode(1)
    }
}

/// `cloudfs unmount MOUNTPOINT`: unmounts and waits for the daemon to finish its work.
struct Unmount: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Unmount the cloud mounted on MOUNTPOINT.")

    @Argument(help: "The mount point.")
    var mountpoint: String

    func run() throws {
        let mp = absolutePath(mountpoint)
        let pidText = try? String(contentsOfFile: PidFile.path(for: mp), encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/fusermount3")
        p.arguments = ["-u", mp]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ExitCode(p.terminationStatus) }
        if let pidText, let pid = Int32(pidText.trimmingCharacters(in: .whitespacesAndNewlines)) {
            for _ in 0..<600 where Self.isRunning(pid) { usleep(50_000) }
            if Self.isRunning(pid) {
                FileHandle.standardError.write(Data("cloudfs: unmounted \(mp), but daemon \(pid) is still finishing its jobs\n".utf8))
            }
        }
    }

    /// True while `pid` exists and has not exited: a zombie (state `Z` in /proc/PID/stat,
    /// waiting for its parent or init to reap it) is done.
    static func isRunning(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }
}
