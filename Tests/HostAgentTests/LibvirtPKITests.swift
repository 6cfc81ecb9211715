import CloudCore
import Foundation
import HostAgent
import XCTest

/// libvirt's TLS credentials, checked by GnuTLS's own `certtool` (the library libvirt uses):
/// host certificates chain to the libvirt CA, name the host and its addresses, carry the
/// purposes and key usage libvirt insists on, and the CA is not the agents' CA.
final class LibvirtPKITests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/certtool") else { throw XCTSkip("certtool (gnutls-bin) is not installed") }
        root = NSTemporaryDirectory() + "cloudfs-libvirt-pki-\(UUID().uuidString)"
        addTeardownBlock { [root] in try? FileManager.default.removeItem(atPath: root) }
    }

    func certtool(_ args: String) -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "certtool \(args) 2>&1"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try? p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testHostCredentialsVerifyAgainstTheLibvirtCA() throws {
        let pki = LibvirtPKI(directory: root + "/state/pki/libvirt")
        let out = root + "/node2"
        try pki.issueHostCredentials(host: "node2", addresses: ["10.250.0.2", "fd00::2"], into: out)
        let ca = pki.directory + "/cacert.pem"
        for file in ["libvirt/servercert.pem", "libvirt/clientcert.pem"] {
            let v = certtool("--verify --load-ca-certificate '\(ca)' --infile '\(out)/\(file)'")
            XCTAssertEqual(v.status, 0, "\(file): \(v.out)")
            let info = certtool("-i --infile '\(out)/\(file)'").out
            XCTAssertTrue(info.contains("IPAddress: 10.250.0.2"), info)
            XCTAssertTrue(info.contains("IPAddress: fd00::2"), info)
            XCTAssertTrue(info.contains("DNSname: node2"), info)
            XCTAssertTrue(info.contains("Key encipherment"), "libvirt refuses a key usage without it: \(info)")
            XCTAssertTrue(info.contains(file.contains("server") ? "TLS WWW Server" : "TLS WWW Client"), info)
        }
        let controller = certtool("--verify --load-ca-certificate '\(ca)' --infile '\(pki.directory)/clientcert.pem'")
        XCTAssertEqual(controller.status, 0, controller.out)
        XCTAssertEqual(try String(contentsOfFile: out + "/CA/cacert.pem", encoding: .utf8),
                       try String(contentsOfFile: ca, encoding: .utf8))
        let key = try FileManager.default.attributesOfItem(atPath: out + "/libvirt/private/serverkey.pem")
        XCTAssertEqual((key[.posixPermissions] as? NSNumber)?.intValue, 0o600)

        // The agents' CA is another one: an agent certificate does not verify against libvirt's.
        try AgentPKI(directory: root + "/state/pki").issueHostCredentials(host: "node2", into: root + "/agent")
        XCTAssertNotEqual(certtool("--verify --load-ca-certificate '\(ca)' --infile '\(root)/agent/agent.pem'").status, 0)

        XCTAssertThrowsError(try pki.issueHostCredentials(host: "node3", addresses: ["not-an-ip"], into: root + "/n3")) { e in
            XCTAssertTrue("\(e)".contains("not an IP address"), "\(e)")
        }
    }
}
