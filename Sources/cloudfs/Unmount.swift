import ArgumentParser
import CloudEngine
import Foundation

/// `cloudfs unmount MOUNTPOINT`: unmounts and waits for the daemon to finish its work.
/// With `--teardown-network`, then removes the host networking `--manage-network` made
/// (see `HostNetworkTeardown`), once no instance is left.
struct Unmount: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Unmount the cloud mounted on MOUNTPOINT.")

    @Argument(help: "The mount point.")
    var mountpoint: String

    @Flag(help: "Then remove what --manage-network made on this host (dnsmasq, bridges, VLAN interfaces, nftables tables, floating routes). Refused, before unmounting, while any instance exists.")
    var teardownNetwork = false

    @Option(help: "The cloud's state directory, for --teardown-network when MOUNTPOINT is no longer mounted. Default: the mounted daemon's.")
    var state: String?

    func run() throws {
        try reportingFailures {
            let mp = absolutePath(mountpoint)
            let daemon = PidFile.read(mountpoint: mp)
            let mounted = MountTable.entry(at: mp) != nil
            var stateDir: String?
            if teardownNetwork {
                stateDir = state.map(absolutePath) ?? daemon?.stateDir
                guard let stateDir else {
                    throw ValidationFailure("cannot tell which state directory \(mp) served; give it with --state")
                }
                try HostNetworkTeardown.checkNamespace(stateDir: stateDir)
                // Refuse while the tree still shows instances, before unmounting anything;
                // the state is checked again under its lock once the daemon is gone.
                if mounted, !StaleMount.isDead(mp) { try Self.refuseWhileInstancesExist(mp) }
            }
            if mounted {
                try Self.unmount(mp, daemon: daemon?.pid)
            } else if !teardownNetwork {
                throw ValidationFailure("\(mp) is not mounted")
            }
            if let stateDir {
                let lock = try StateLock.acquire(stateDir, role: "tearing down host networking")
                let report = try withExtendedLifetime(lock) { try HostNetworkTeardown.run(stateDir: stateDir) }
                print(Self.summary(report, stateDir: stateDir))
            }
        }
    }

    /// `EBUSY`-style refusal naming the instances the mounted tree lists.
    static func refuseWhileInstancesExist(_ mp: String) throws {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: mp + "/instances")) ?? []).sorted()
        guard !names.isEmpty else { return }
        throw ValidationFailure("EBUSY: host networking is still used by instance\(names.count == 1 ? "" : "s") \(names.joined(separator: ", ")); delete \(names.count == 1 ? "it" : "them") first, or unmount without --teardown-network (nothing was unmounted)")
    }

    /// `fusermount3 -u`, then waits for the daemon to finish its jobs and exit.
    static func unmount(_ mp: String, daemon pid: Int32?) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/fusermount3")
        p.arguments = ["-u", mp]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ExitCode(p.terminationStatus) }
        if let pid {
            for _ in 0..<600 where isRunning(pid) { usleep(50_000) }
            if isRunning(pid) {
                FileHandle.standardError.write(Data("cloudfs: unmounted \(mp), but daemon \(pid) is still finishing its jobs\n".utf8))
            }
        }
    }

    static func summary(_ r: HostNetworkTeardown.Report, stateDir: String) -> String {
        let dhcp = r.stoppedDHCP.sorted { $0.key < $1.key }.map { "\($0.key) (pid \($0.value))" }
        return "cloudfs: removed the host networking of \(stateDir): "
            + "dnsmasq stopped: \(dhcp.isEmpty ? "none running" : dhcp.joined(separator: ", ")); "
            + "links deleted: \(r.removedLinks.isEmpty ? "none" : r.removedLinks.joined(separator: ", ")); "
            + "nftables tables removed"
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
