import Foundation
import XCTest

/// A real libvirtd started by a test on a private socket, serving libvirt's test driver:
/// a fake host whose domains live outside the cloudfs daemon, so they survive its
/// restarts and crashes, and the test can list them independently (`virsh`).
final class PrivateLibvirtd {
    let dir: String
    private var process: Process?
    /// An idle `virsh` holding a connection: the test driver drops its domains when its
    /// last connection closes, which a killed cloudfs daemon would otherwise cause.
    private var keeper: Process?
    private var keeperInput: Pipe?

    /// The URI of its test driver.
    var uri: String { "test+unix:///default?socket=\(dir)/libvirt-sock" }

    init(dir: String) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/libvirtd") else {
            throw XCTSkip("libvirtd is not installed (scripts/install-deps.sh installs libvirt-daemon)")
        }
        self.dir = dir
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try """
        unix_sock_dir = "\(dir)"
        listen_tls = 0
        listen_tcp = 0
        auth_unix_rw = "none"
        auth_unix_ro = "none"
        """.write(toFile: dir + "/libvirtd.conf", atomically: true, encoding: .utf8)
    }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/libvirtd")
        p.arguments = ["--config", dir + "/libvirtd.conf", "--pid-file", dir + "/pid"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: dir + "/libvirt-sock") { usleep(50_000) }
    }

    /// Keeps one connection to the test driver open until `stop`.
    func holdConnection() throws {
        let k = Process()
        k.executableURL = URL(fileURLWithPath: "/usr/bin/virsh")
        k.arguments = ["-c", uri]
        let input = Pipe()
        k.standardInput = input
        k.standardOutput = FileHandle.nullDevice
        k.standardError = FileHandle.nullDevice
        try k.run()
        keeper = k
        keeperInput = input
        usleep(200_000)
    }

    func stop() {
        if let k = keeper {
            try? keeperInput?.fileHandleForWriting.close()
            k.terminate()
            k.waitUntilExit()
            keeper = nil
        }
        guard let p = process else { return }
        p.terminate()
        p.waitUntilExit()
        process = nil
        try? FileManager.default.removeItem(atPath: dir + "/libvirt-sock")
    }

    /// uuids of the domains whose name starts with `prefix` (all states).
    func domains(prefix: String = "cloudfs-") -> Set<String> {
        let r = sh("virsh -c '\(uri)' list --all --name --uuid 2>/dev/null || virsh -c '\(uri)' list --all --uuid")
        var out = Set<String>()
        for line in r.out.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if f.count >= 2, f[1].hasPrefix(prefix) { out.insert(String(f[0])) }
        }
        return out
    }

    deinit { stop() }
}
