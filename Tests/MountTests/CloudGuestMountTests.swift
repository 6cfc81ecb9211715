import CloudTesting
import Foundation
import XCTest

/// The everyday cloud session with a real Debian 12 cloud-init guest
/// (examples/make-cloud-guest.sh): copy the image into /images, add a key pair, launch an
/// instance whose user data prints a marker, and log in with ssh and the key.
protocol CloudGuestSession: MountTestCase {}

extension CloudGuestSession {
    var image: String { TestPaths.cloudGuestDir + "/debian-12-cloud.qcow2" }

    /// Skips without QEMU or the built guest (scripts/test.sh builds it).
    func requireCloudGuest() throws {
        try prepareTinyGuest()   // QEMU present, TCG
        guard FileManager.default.fileExists(atPath: image) else {
            throw XCTSkip("no cloud guest at \(image): run examples/make-cloud-guest.sh \(TestPaths.cloudGuestDir)")
        }
    }

    /// The image, a key pair, a 512 MiB flavor, and a launch file with user data.
    func launch(_ name: String, extra: String = "") throws {
        sh("rm -f '\(work)/key' '\(work)/key.pub' && ssh-keygen -q -t ed25519 -N '' -f '\(work)/key'")
        ok("cp '\(image)' images/debian && cp '\(work)/key.pub' keypairs/me")
        ok("mkdir flavors/c1 && echo 1 > flavors/c1/vcpus && echo 512 > flavors/c1/ram_mb && echo 4 > flavors/c1/disk_gb")
        let spec = """
        {"image": "debian", "flavor": "c1", "key_name": "me"\(extra),
         "user_data": "#cloud-config\\nruncmd:\\n  - echo CLOUDFS-USERDATA-RAN host=$(hostname) > /dev/ttyS0\\n"}
        """
        try spec.write(toFile: work + "/\(name).json", atomically: true, encoding: .utf8)
        ok("cp '\(work)/\(name).json' instances/\(name)")
        XCTAssertEqual(ok("timeout 120 cat instances/\(name)/wait", timeout: 130), "ACTIVE\n", read("instances/\(name)/fault"))
    }

    /// Waits for cloud-init to run the user data (its marker names the hostname it set) and
    /// to finish (its last line names the datasource it used).
    func waitForUserData(_ name: String, seconds: Int = 300) -> String {
        var console = ""
        for _ in 0..<(seconds * 2) {
            console = read("instances/\(name)/console").replacingOccurrences(of: "\r", with: "")
            if console.contains("CLOUDFS-USERDATA-RAN") && console.contains("Datasource") { break }
            usleep(500_000)
        }
        return console
    }

    /// `ssh ... hostname` until sshd answers; the command's output.
    func sshHostname(_ command: String, seconds: Int = 120) -> Shell {
        var r = Shell(status: -1, out: "", err: "")
        for _ in 0..<(seconds / 3) {
            r = sh(command, timeout: 30)
            if r.status == 0 { break }
            sleep(3)
        }
        return r
    }

    static var sshOptions: String {
        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=10 -o LogLevel=ERROR"
    }
}

/// The default mode (no host networking touched): the config drive carries the key, user
/// data and static network; the loopback port `instances/NAME/ssh` names reaches sshd.
final class CloudGuestMountTests: GuestMountTestCase, CloudGuestSession {
    override func setUpWithError() throws {
        try requireCloudGuest()
        try super.setUpWithError()
    }

    func testConfigDriveKeyUserDataAndSSHThroughTheForwardedPort() throws {
        try launch("web1")
        let console = waitForUserData("web1")
        XCTAssertTrue(console.contains("CLOUDFS-USERDATA-RAN host=web1"), "user data ran and set the hostname: \(console.suffix(2000))")
        XCTAssertTrue(console.contains("DataSourceConfigDrive"), "cloud-init used the config drive")
        let ssh = read("instances/web1/ssh")
        XCTAssertTrue(ssh.hasPrefix("ssh -p 22") && ssh.hasSuffix(" debian@127.0.0.1"), ssh)
        let command = ssh.replacingOccurrences(of: "ssh ", with: "ssh -i '\(work)/key' \(Self.sshOptions) ", options: .anchored) + " hostname"
        let r = sshHostname(command)
        XCTAssertEqual(r.status, 0, "\(command): \(r.err)")
        XCTAssertEqual(r.out.trimmingCharacters(in: .whitespacesAndNewlines), "web1")
        // Another key is refused: the key pair is what lets one in.
        sh("ssh-keygen -q -t ed25519 -N '' -f '\(work)/other'")
        let other = ssh.replacingOccurrences(of: "ssh ", with: "ssh -i '\(work)/other' \(Self.sshOptions) ", options: .anchored) + " hostname"
        XCTAssertNotEqual(sh(other, timeout: 30).status, 0)

        // The interactive console (libvirt's console stream): a key reaches getty, whose
        // prompt comes back; Ctrl-] detaches. `console` stays the log meanwhile.
        let attached = sh("(sleep 2; printf '\\r'; sleep 5; printf '\\035') | '\(cloudfs)' console '\(mnt)/instances/web1'", timeout: 60)
        XCTAssertEqual(attached.status, 0, attached.err)
        XCTAssertTrue(attached.err.contains("Connected to web1"), attached.err)
        XCTAssertTrue(attached.out.contains("web1 login:"), "getty answered on the console: \(attached.out.suffix(500))")
        XCTAssertTrue(read("instances/web1/console").contains("CLOUDFS-USERDATA-RAN"))
        XCTAssertTrue(read("events").contains("instance.console web1"))
    }
}

/// With --manage-network, inside a network namespace this test makes: no config drive;
/// cloud-init finds the metadata service at 169.254.169.254 (redirected to the gateway),
/// and the host reaches the fixed IP on the bridge.
final class CloudGuestMetadataMountTests: NamespaceMountTestCase, CloudGuestSession {
    override var hostArgs: [String] { [] }

    override func setUpWithError() throws {
        try requireCloudGuest()
        try super.setUpWithError()
    }

    func testMetadataServiceKeyUserDataAndSSHToTheFixedIP() throws {
        ok("echo 'tcp 22 0.0.0.0/0' > security-groups/default/rules")
        try launch("web2", extra: #", "config_drive": false"#)
        XCTAssertFalse(read("instances/web2/domain.xml").contains("disk.config"), "no config drive")
        let console = waitForUserData("web2")
        XCTAssertTrue(console.contains("CLOUDFS-USERDATA-RAN host=web2"), "user data ran and set the hostname: \(console.suffix(2000))")
        XCTAssertTrue(console.contains("DataSourceOpenStack"), "cloud-init used the metadata service")
        let ip = read("instances/web2/ip")
        XCTAssertEqual(read("instances/web2/ssh"), "ssh debian@\(ip)")
        let r = sshHostname("nsenter --net=/var/run/netns/\(namespace) ssh -i '\(work)/key' \(Self.sshOptions) debian@\(ip) hostname")
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out.trimmingCharacters(in: .whitespacesAndNewlines), "web2")
        // The service answers each guest with its own data only: from the host's side of the
        // bridge (not an instance) it has nothing.
        let own = inNamespace("curl -s -o /dev/null -w '%{http_code}' http://\(read("networks/default/gateway")):8775/openstack/latest/meta_data.json")
        XCTAssertEqual(own.out, "404", own.err)
    }
}
