import ArgumentParser
import Foundation

/// A mounted cloudfs on several `test:///` fake hosts, in a work directory; always unmounted.
final class Rig {
    let work: String
    let mnt: String
    let state: String
    let cloudfs: String
    /// The `--host` arguments of `cloudfs mount`, to mount the same cloud again.
    let hostArgs: String
    var mounted = false

    /// `hosts` fake hosts of `cores` vCPUs and `memoryGiB` each (default: big enough for
    /// thousands of m1.nano); `diskPools` storage pools of 100 GiB each (the test driver's
    /// fixed pool size) give the disk, else the state directory's file system does.
    /// `cidr`: a flatdhcp network `bench` of that range becomes the default network (the
    /// `default` network is a /16: 65,533 fixed IPs, fewer than the 100,000-instance run needs).
    init(work: String, hosts: Int, cores: Int = 64, memoryGiB: Int = 256, diskPools: Int = 0,
         extraMountArgs: String = "", cidr: String? = nil) throws {
        self.work = work
        mnt = work + "/cloud"
        state = work + "/state"
        cloudfs = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("cloudfs").path
        _ = try? timed("fusermount3 -uz '\(mnt)' 2>/dev/null; rm -rf '\(work)'")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        chmod(work, 0o755)   // other users (the projects section) reach the mount point
        var args: [String] = []
        for i in 0..<hosts {
            let xml = """
            <node><cpu><mode>host-model</mode><nodes>1</nodes><sockets>1</sockets><cores>\(cores)</cores><threads>1</threads><active>\(cores)</active><mhz>3000</mhz><model>x86_64</model></cpu>
            <memory>\(memoryGiB << 20)</memory>
            """ + (0..<diskPools).map { "<pool type='dir'><name>n\(i)-p\($0)</name><target><path>\(work)/pools/\(i)-\($0)</path></target></pool>" }
                .joined() + "</node>"
            let path = "\(work)/node\(i).xml"
            try xml.write(toFile: path, atomically: true, encoding: .utf8)
            args += ["--host", "test://\(path)"]
        }
        hostArgs = (args + (extraMountArgs.isEmpty ? [] : [extraMountArgs])).joined(separator: " ")
        try timed(mountCommand)
        mounted = true
        try timed("head -c 1M /dev/zero > '\(work)/d.raw' && cp '\(work)/d.raw' '\(mnt)/images/disk' && echo m1.nano > '\(mnt)/defaults/flavor'")
        if let cidr {
            try timed("cd '\(mnt)' && mkdir networks/bench && echo flatdhcp > networks/bench/mode && " +
                      "echo \(cidr) > networks/bench/cidr && echo bench > defaults/network")
        }
    }

    /// Four-or-more fake hosts big enough for `count` m1.nano instances (1 vCPU, 128 MiB,
    /// 1 GB) at the default allocation ratios (CoreFilter 4:1), with disk pools to match
    /// (a test:/// pool holds 100 GB: one per 300 instances on each of four hosts, and spare).
    convenience init(work: String, hosts: Int, capacityFor count: Int) throws {
        try self.init(work: work, hosts: hosts, cores: max(64, count / (hosts * 4) + 16),
                      memoryGiB: max(256, count / 32 + 1), diskPools: count / 300 + 2,
                      cidr: count > 60_000 ? "10.64.0.0/14" : nil)
    }

    /// The daemon's resident memory in KiB (`VmRSS` of the process the state lock names:
    /// `pid N mounted on ...`).
    func daemonRSS() -> Int? {
        let lock = (try? String(contentsOfFile: state + "/cloudfs.lock", encoding: .utf8)) ?? ""
        guard let pid = lock.split(whereSeparator: { !$0.isNumber }).first.flatMap({ Int($0) }),
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        return line.split(separator: " ").compactMap { Int($0) }.first
    }

    /// The shell command that mounts this rig's cloud (returns once the tree is ready).
    var mountCommand: String { "'\(cloudfs)' mount '\(mnt)' --state '\(state)' \(hostArgs) >/dev/null" }

    func tearDown() {
        guard mounted else { return }
        _ = try? timed("for i in '\(mnt)'/instances/*; do [ -d \"$i\" ] && rmdir \"$i\"; done; " +
                       "while [ -n \"$(ls '\(mnt)/instances')\" ]; do sleep 0.2; done")
        _ = try? timed("'\(cloudfs)' unmount '\(mnt)'")
        _ = try? timed("rm -rf '\(work)'")
        mounted = false
    }
}
