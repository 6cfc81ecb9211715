import CloudTesting
import Foundation
import XCTest

/// libvirt's authenticated transports to remote compute hosts: `qemu+tls://` (client and
/// server certificates from the cloud's libvirt CA, `LibvirtPKI`) and `qemu+ssh://` (sshd on
/// the host, the controller's key, the host key checked against root's known_hosts). The
/// hosts are the same namespaced libvirtds as `ComputeNodeTestCase`'s, also serving TLS
/// and SSH.
final class TransportMountTests: ComputeNodeTestCase {
    override var hostSpecs: [(name: String, index: Int)] { [("cfsua", 27), ("cfsub", 28)] }
    /// The controller's SSH key (private; `.pub` beside it).
    var sshKey: String { work + "/ssh-id" }
    var knownHosts: String { (getpwuid(getuid()).map { String(cString: $0.pointee.pw_dir) } ?? "/root") + "/.ssh/known_hosts" }

    override func startHost(_ name: String, index: Int) throws -> String {
        if !FileManager.default.fileExists(atPath: sshKey) {
            ok("ssh-keygen -q -t ed25519 -N '' -C cloudfs-controller -f '\(sshKey)'")
        }
        let creds = "\(work)/pki-\(name)"
        let r = sh("'\(cloudfs)' agent-credentials --state '\(state)' --host \(name) --out '\(creds)' --address 10.250.0.\(index)")
        guard r.status == 0 else { throw NSError(domain: "agent-credentials", code: 1, userInfo: [NSLocalizedDescriptionKey: r.err]) }
        let uri = try startComputeHost(name, index: index, tlsPKI: creds, sshKey: sshKey + ".pub")
        // As an operator would: the host's key goes into known_hosts before the first ssh.
        forgetHostKey(index)
        ok("mkdir -p \"$(dirname '\(knownHosts)')\" && '\(computeHostScript)' known-host \(name) >> '\(knownHosts)'")
        return uri
    }

    override func tearDown() {
        super.tearDown()
        for (_, index) in hostSpecs { forgetHostKey(index) }
    }

    func forgetHostKey(_ index: Int) {
        sh("[ -f '\(knownHosts)' ] && sed -i '/^10\\.250\\.0\\.\(index) /d' '\(knownHosts)'")
    }

    func boots(_ name: String) -> Int { read("instances/\(name)/console").components(separatedBy: "CLOUDFS-GUEST-BOOTED").count - 1 }

    var tlsURI: String { "qemu+tls://10.250.0.27/system" }
    var sshURI: String { "qemu+ssh://root@10.250.0.28/system?keyfile=\(sshKey)" }

    /// A guest built on a TLS host and one on an SSH host; each console arrives through
    /// its transport; a cold migration copies a disk from the TLS host to the SSH one; a
    /// live migration goes peer to peer from the SSH host's libvirtd to the TLS host's,
    /// authenticated by the hosts' own certificates; rmdir leaves nothing on either. A
    /// client certificate from another CA is refused.
    func testGuestsRunOnHostsReachedOverTLSAndSSH() throws {
        register("cfsua", uri: tlsURI)
        register("cfsub", uri: sshURI)
        XCTAssertTrue(FileManager.default.fileExists(atPath: state + "/pki/libvirt/clientcert.pem"))
        XCTAssertTrue(read("events").contains("uri=\(tlsURI)"), "the URI is shown as given, without the pkipath")
        ok("echo disable > hosts/local/ctl && echo disable > hosts/cfsub/ctl")
        uploadGuest()

        ok("mkdir instances/t1")
        XCTAssertEqual(ok("timeout 120 cat instances/t1/wait"), "ACTIVE\n", read("instances/t1/fault"))
        XCTAssertEqual(read("instances/t1/host"), "cfsua")
        ok("echo enable > hosts/cfsub/ctl && echo disable > hosts/cfsua/ctl && mkdir instances/t2")
        XCTAssertEqual(ok("timeout 120 cat instances/t2/wait"), "ACTIVE\n", read("instances/t2/fault"))
        XCTAssertEqual(read("instances/t2/host"), "cfsub")
        for name in ["t1", "t2"] {
            XCTAssertTrue(waitForConsole(name).contains("CLOUDFS-GUEST-BOOTED"), "\(name): \(read("instances/\(name)/console").suffix(400))")
        }
        let (id1, id2) = (read("instances/t1/id"), read("instances/t2/id"))
        XCTAssertTrue(virsh("cfsua", "list --uuid").contains(id1))
        XCTAssertTrue(virsh("cfsub", "list --uuid").contains(id2))

        // Cold migration TLS → SSH: the disk is read through one transport, written through the other.
        ok("echo enable > hosts/cfsua/ctl && echo 'migrate cfsub' > instances/t1/ctl")
        XCTAssertEqual(ok("timeout 120 cat instances/t1/wait"), "ACTIVE\n", read("instances/t1/fault"))
        XCTAssertEqual(read("instances/t1/host"), "cfsub")
        XCTAssertTrue(virsh("cfsub", "list --uuid").contains(id1))
        XCTAssertFalse(virsh("cfsua", "list --all --uuid").contains(id1))
        for _ in 0..<180 where boots("t1") < 2 { usleep(500_000) }
        XCTAssertEqual(boots("t1"), 2, "the console through the SSH host: \(read("instances/t1/console").suffix(400))")

        // Live migration SSH → TLS: cfsub's libvirtd opens qemu+tls://10.250.0.27 itself,
        // with the client certificate agent-credentials issued it.
        let before = boots("t2")
        ok("echo 'live-migrate cfsua' > instances/t2/ctl")
        XCTAssertEqual(ok("timeout 120 cat instances/t2/wait"), "ACTIVE\n", read("instances/t2/fault"))
        XCTAssertEqual(read("instances/t2/host"), "cfsua", read("instances/t2/fault"))
        XCTAssertTrue(virsh("cfsua", "list --uuid").contains(id2))
        XCTAssertFalse(virsh("cfsub", "list --all --uuid").contains(id2))
        XCTAssertEqual(boots("t2"), before, "no reboot")

        // The TLS host refuses a client certificate from another cloud's CA. (virsh would
        // refuse it itself before connecting; gnutls-cli presents it, and libvirtd, which
        // checks the peer after the handshake, hangs up.)
        let other = "\(work)/other-cloud"
        ok("'\(cloudfs)' agent-credentials --state '\(other)' --host cfsua --out '\(other)/creds'")
        func present(_ pki: String) -> (status: Int32, out: String) {
            let r = sh("timeout 20 gnutls-cli --x509cafile '\(state)/pki/libvirt/cacert.pem' --x509certfile '\(pki)/clientcert.pem' "
                       + "--x509keyfile '\(pki)/clientkey.pem' -p 16514 10.250.0.27 < <(sleep 3)")
            return (r.status, r.out + r.err)
        }
        let ours = present("\(state)/pki/libvirt")
        XCTAssertEqual(ours.status, 0, "this cloud's client certificate: \(ours.out)")
        let foreign = present("\(other)/pki/libvirt")
        XCTAssertNotEqual(foreign.status, 0, "a certificate from another CA was let in: \(foreign.out)")
        XCTAssertTrue(foreign.out.contains("terminated the connection"), foreign.out)

        ok("rmdir instances/t1 instances/t2")
        for _ in 0..<100 where !ok("ls instances").isEmpty { usleep(100_000) }
        for node in ["cfsua", "cfsub"] {
            XCTAssertEqual(volumes(node).filter { !$0.hasPrefix("image-") }, [], "instance volumes left on \(node)")
            XCTAssertFalse(virsh(node, "list --all --name").contains("cloudfs-"), "a domain left on \(node)")
        }
    }
}
