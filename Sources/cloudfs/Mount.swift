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

    @Option(help: "LVM volume group for the lvm volume backend (Cinder's LVM driver with thin provisioning: a thin pool cloudfs-pool is made in it on first use). Without it volumes are qcow2 files in the state directory.")
    var volumeGroup: String?

    @Option(help: "Loopback ports forwarded to guests' port 22 in user-mode networking, one per instance (instances/NAME/ssh prints the command).")
    var sshPorts: String = "22000-22999"

    @Option(help: "Port of the metadata service (Nova's metadata API) with --manage-network; each network's 169.254.169.254:80 is redirected to it.")
    var metadataPort: Int = 8775

    @Flag(help: .hidden)
    var daemonChild = false

    /// `--ssh-ports FIRST-LAST`.
    var sshPortRange: ClosedRange<Int>? {
        let parts = sshPorts.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 2, parts[0] >= 1, parts[0] <= parts[1], parts[1] <= 65535 else { return nil }
        return parts[0]...parts[1]
    }

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
        guard sshPortRange != nil else { throw ValidationError("--ssh-ports must be FIRST-LAST, ports from 1 to 65535 (got '\(sshPorts)')") }
        guard (1...65535).contains(metadataPort) else { throw ValidationError("--metadata-port must be from 1 to 65535") }
        for h in hosts where !h.contains(":") {
            throw ValidationError("--host \(h) is not a libvirt URI (e.g. test:///default, qemu:///system)")
        }
    }

    func run() throws {
        // The launching process shows the child's refusal (see `Background.launch`).
        let tellLauncher: ((String) -> Void)? = daemonChild ? { FileHandle.standardOutput.write(Data("error \($0)\n".utf8)) } : nil
        try reportingFailures(alsoTell: tellLauncher) { try start() }
    }

    /// Refuses a mount point that is already one and a state directory another process
    /// holds before anything is opened, then runs the daemon (holding the state lock for
    /// its whole life) or launches it in the background.
    private func start() throws {
        let mp = absolutePath(mountpoint)
        StaleMount.clear(mp)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: mp, isDirectory: &isDir), isDir.boolValue else {
            throw ValidationFailure("mount point \(mp) is not a directory")
        }
        let mountPointLock = foreground || daemonChild ? try MountPointLock(mp) : nil
        if let existing = MountTable.entry(at: mp) {
            throw ValidationFailure("\(mp) is already a mount point (\(Self.describe(existing))); unmount it first or choose another directory")
        }
        if foreground || daemonChild {
            let lock = try StateLock.acquire(stateDir, role: "mounted on \(mp)")
            try withExtendedLifetime((lock, mountPointLock)) {
                try Daemon(mountpoint: mp, stateDir: stateDir, hostURIs: hosts,
                           virtType: resolvedVirtType, allowOther: allowOther, manageNetwork: manageNetwork,
                           volumeGroup: volumeGroup, sshPorts: sshPortRange ?? 22000...22999, metadataPort: metadataPort,
                           daemonChild: daemonChild).run()
            }
        } else {
            if let holder = StateLock.holder(of: stateDir) { throw StateLock.Busy(stateDir: stateDir, holder: holder) }
            try Background.launch(stateDir: stateDir, mountpoint: mp)
        }
    }

    /// What is mounted: a cloudfs daemon by its pid and state, anything else by type and source.
    static func describe(_ entry: MountTable.Entry) -> String {
        if entry.type == "fuse.cloudfs", let daemon = PidFile.read(mountpoint: entry.mountPoint) {
            return "cloudfs pid \(daemon.pid)" + (daemon.stateDir.map { ", state \($0)" } ?? "")
        }
        return "\(entry.type) from \(entry.source)"
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
        if line.hasPrefix("error ") {
            FileHandle.standardError.write(Data("cloudfs: \(line.dropFirst(6))\n".utf8))
            throw ExitCode(1)
        }
        let tail = (try? String(contentsOfFile: logPath, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
        FileHandle.standardError.write(Data("cloudfs: mount failed\n\(tail)\n".utf8))
        throw ExitCode(1)
    }
}
