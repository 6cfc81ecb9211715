import Foundation
import XCTest

/// Nova's key pairs and launch options through the tree (test:/// hosts): `cp key.pub
/// keypairs/me`, a launch file copied to `instances/NAME` that makes the instance with all
/// of its options at once, and every bad input refused with its errno and reason.
final class LaunchMountTests: MountTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        addDiskImage()
        sh("ssh-keygen -q -t ed25519 -N '' -C me@test -f '\(work)/id_ed25519'")
        sh("ssh-keygen -q -t ecdsa -b 384 -N '' -f '\(work)/id_ecdsa'")
        sh("ssh-keygen -q -t rsa -b 1024 -N '' -f '\(work)/id_rsa1024'")
    }

    func testKeypairsAreCopiedInReadAndRemoved() throws {
        ok("cp '\(work)/id_ed25519.pub' keypairs/me")
        XCTAssertEqual(read("keypairs/me"), read("../id_ed25519.pub"))
        let fingerprint = sh("ssh-keygen -l -f '\(work)/id_ed25519.pub' | awk '{print $2}'").out.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(read("keypairs.d/me/fingerprint"), fingerprint, "OpenSSH's SHA256 fingerprint")
        XCTAssertEqual(read("keypairs.d/me/type"), "ssh-ed25519")
        XCTAssertEqual(read("keypairs.d/me/bits"), "256")
        XCTAssertEqual(read("keypairs.d/me/owner"), "0")
        XCTAssertEqual(ok("ls keypairs"), "me\n")
        // A shell redirection (open, dup2, close, then the write) works too; ecdsa is accepted.
        ok("echo \"$(cat '\(work)/id_ecdsa.pub')\" > keypairs/other")
        XCTAssertEqual(read("keypairs.d/other/type"), "ecdsa-sha2-nistp384")
        // The same key again changes nothing; another key under the name is EEXIST.
        ok("cp '\(work)/id_ed25519.pub' keypairs/me")
        XCTAssertTrue(fails("cp '\(work)/id_ecdsa.pub' keypairs/me").contains("File exists"))
        XCTAssertTrue(read("events").contains("keypair.refused me"))
        ok("rm keypairs/other")
        XCTAssertEqual(ok("ls keypairs"), "me\n")
        XCTAssertTrue(read("events").contains("keypair.deleted other"))
    }

    func testBadKeysAreRefusedWithTheirReason() {
        let cases: [(String, String)] = [
            ("id_rsa1024.pub", "at least 2048 bits"),
            ("dss.pub", "is not accepted"),
            ("garbage.pub", "not an OpenSSH public key"),
            ("mismatch.pub", "its data is a"),
            ("private", "PEM file"),
        ]
        ok("echo 'ssh-dss AAAAB3NzaC1kc3MAAACBAP8= x' > '\(work)/dss.pub'")
        ok("echo 'hello' > '\(work)/garbage.pub'")
        // An ed25519 key's data labelled as RSA.
        ok("echo \"ssh-rsa $(awk '{print $2}' '\(work)/id_ed25519.pub')\" > '\(work)/mismatch.pub'")
        ok("cp '\(work)/id_ed25519' '\(work)/private'")
        for (file, reason) in cases {
            let err = fails("cp '\(work)/\(file)' keypairs/bad")
            XCTAssertTrue(err.contains("Invalid argument"), "\(file): \(err)")
            XCTAssertTrue(read("events").contains(reason), "\(file): events lack '\(reason)'")
            XCTAssertEqual(ok("ls keypairs"), "", "\(file) left a key pair")
        }
        // The key_pairs quota counts them.
        ok("echo 1 > projects/default/quota/key_pairs")
        ok("cp '\(work)/id_ed25519.pub' keypairs/one")
        XCTAssertTrue(fails("cp '\(work)/id_ecdsa.pub' keypairs/two").contains("quota"))
        XCTAssertEqual(ok("ls keypairs"), "one\n")
    }

    func testLaunchFileSetsEveryOptionAtOnce() throws {
        ok("cp '\(work)/id_ed25519.pub' keypairs/me && cp '\(work)/id_ecdsa.pub' keypairs/spare")
        ok("mkdir groups/g && mkdir security-groups/web && mkdir flavors/m1.other && echo 1 > flavors/m1.other/vcpus && echo 64 > flavors/m1.other/ram_mb")
        let spec = """
        {"image": "disk", "flavor": "m1.other", "key_name": "me", "group": "g",
         "security_groups": ["web", "default"], "user_data": "#cloud-config\\nruncmd:\\n - echo hi\\n",
         "metadata": {"role": "web", "tier": "1"}}
        """
        try spec.write(toFile: work + "/web1.json", atomically: true, encoding: .utf8)
        // Another script changing /defaults at the same moment changes nothing here.
        ok("cp '\(work)/web1.json' instances/web1 & for i in 1 2 3 4 5; do echo m1.nano > defaults/flavor; done; wait")
        XCTAssertTrue(sh("test -d '\(mnt)/instances/web1'").status == 0, "the launch file became the instance's directory")
        XCTAssertEqual(ok("timeout 30 cat instances/web1/wait"), "ACTIVE\n")
        XCTAssertEqual(read("instances/web1/flavor"), "m1.other")
        XCTAssertEqual(read("instances/web1/key_name"), "me")
        XCTAssertEqual(read("instances/web1/group"), "g")
        XCTAssertEqual(read("instances/web1/security_groups"), "web\ndefault")
        XCTAssertEqual(read("instances/web1/user_data"), "#cloud-config\nruncmd:\n - echo hi")
        XCTAssertEqual(ok("ls instances/web1/metadata"), "role\ntier\n")
        XCTAssertEqual(read("instances/web1/metadata/role"), "web")
        // Metadata items are Nova's server metadata: set, change, remove.
        ok("echo db > instances/web1/metadata/role && echo x > instances/web1/metadata/new && rm instances/web1/metadata/tier")
        XCTAssertEqual(ok("ls instances/web1/metadata"), "new\nrole\n")
        XCTAssertEqual(read("instances/web1/metadata/role"), "db")
        // A shell redirection is a launch too; plain mkdir still takes /defaults, and with
        // several key pairs and no key_name default, no key.
        ok("echo '{\"flavor\": \"m1.nano\"}' > instances/web2 && timeout 30 cat instances/web2/wait")
        XCTAssertEqual(read("instances/web2/flavor"), "m1.nano")
        ok("mkdir instances/plain && timeout 30 cat instances/plain/wait")
        XCTAssertEqual(read("instances/plain/key_name"), "")
        ok("echo spare > defaults/key_name && mkdir instances/keyed && timeout 30 cat instances/keyed/wait")
        XCTAssertEqual(read("instances/keyed/key_name"), "spare")
        // test:/// guests run no QEMU: no port is forwarded and there is no way in to print.
        XCTAssertEqual(read("instances/web1/ssh"), "")
    }

    /// A file of the instance's config drive, read with isoinfo (Joliet names).
    func configDriveFile(_ id: String, _ path: String) -> String {
        sh("isoinfo -J -x '\(path)' -i '\(state)/instances/\(id)/disk.config'").out
    }

    func testConfigDriveHoldsTheLaunchAndIsRebuilt() throws {
        ok("cp '\(work)/id_ed25519.pub' keypairs/me")
        let spec = ##"{"key_name": "me", "user_data": "#cloud-config\nhostname: first\n", "metadata": {"role": "web"}}"##
        try spec.write(toFile: work + "/cd.json", atomically: true, encoding: .utf8)
        ok("cp '\(work)/cd.json' instances/Web_1 && timeout 30 cat instances/Web_1/wait")
        let id = read("instances/Web_1/id")
        let info = sh("isoinfo -d -i '\(state)/instances/\(id)/disk.config'").out
        XCTAssertTrue(info.contains("Volume id: config-2"), info)
        XCTAssertTrue(read("instances/Web_1/domain.xml").contains("disk.config"), "attached as a cdrom")
        let meta = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(configDriveFile(id, "/openstack/latest/meta_data.json").utf8)) as? [String: Any])
        XCTAssertEqual(meta["uuid"] as? String, id)
        XCTAssertEqual(meta["name"] as? String, "Web_1")
        XCTAssertEqual(meta["hostname"] as? String, "web-1", "Nova's hostname rules")
        XCTAssertEqual(meta["project_id"] as? String, "default")
        XCTAssertEqual(meta["availability_zone"] as? String, "nova")
        XCTAssertEqual((meta["public_keys"] as? [String: String])?["me"], read("keypairs/me"))
        XCTAssertEqual(meta["meta"] as? [String: String], ["role": "web"])
        XCTAssertEqual(configDriveFile(id, "/openstack/latest/user_data"), "#cloud-config\nhostname: first\n")
        let net = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(configDriveFile(id, "/openstack/latest/network_data.json").utf8)) as? [String: Any])
        let link = try XCTUnwrap((net["links"] as? [[String: Any]])?.first)
        XCTAssertEqual(link["ethernet_mac_address"] as? String, read("instances/Web_1/mac"))
        let network = try XCTUnwrap((net["networks"] as? [[String: Any]])?.first)
        XCTAssertEqual(network["ip_address"] as? String, read("instances/Web_1/ip"))
        let masks = ["16": "255.255.0.0", "24": "255.255.255.0"]
        XCTAssertEqual(network["netmask"] as? String, masks[String(read("networks/default/cidr").split(separator: "/").last ?? "")])
        XCTAssertEqual(network["type"] as? String, "ipv4")
        XCTAssertEqual((network["routes"] as? [[String: String]])?.first?["gateway"], "10.0.0.1")
        XCTAssertFalse(((net["services"] as? [[String: String]]) ?? []).isEmpty, "a DNS server")
        XCTAssertEqual(configDriveFile(id, "/openstack/latest/vendor_data.json"), "{}")
        let ec2 = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(configDriveFile(id, "/ec2/latest/meta-data.json").utf8)) as? [String: Any])
        XCTAssertEqual(ec2["local-ipv4"] as? String, read("instances/Web_1/ip"))
        XCTAssertEqual(ec2["hostname"] as? String, "web-1")
        XCTAssertEqual(ec2["instance-id"] as? String, "i-" + id.filter { $0 != "-" }.prefix(8))
        let imageID = read("images.d/\(read("instances/Web_1/image"))/id")
        XCTAssertEqual(ec2["ami-id"] as? String, "ami-" + imageID.filter { $0 != "-" }.prefix(8))
        // New user data reaches the drive at the next rebuild (Nova 2.90).
        ok("printf '#cloud-config\\nhostname: second\\n' > instances/Web_1/user_data")
        XCTAssertEqual(configDriveFile(id, "/openstack/latest/user_data"), "#cloud-config\nhostname: first\n")
        ok("echo rebuild > instances/Web_1/ctl && timeout 30 cat instances/Web_1/wait")
        XCTAssertEqual(configDriveFile(id, "/openstack/latest/user_data"), "#cloud-config\nhostname: second")
    }

    /// `tty` on a host without consoles, and on a guest that is not running, says why.
    func testConsoleRefusals() {
        ok("mkdir instances/c && timeout 30 cat instances/c/wait")
        XCTAssertTrue(fails("cat instances/c/tty").contains("Operation not supported"))
        XCTAssertTrue(read("events").contains("test:///default has no serial consoles"))
        ok("echo stop > instances/c/ctl && timeout 30 cat instances/c/wait")
        XCTAssertTrue(fails("cat instances/c/tty").contains("Device or resource busy"))
        XCTAssertTrue(read("events").contains("c is not running"))
        let r = sh("'\(cloudfs)' console '\(mnt)/instances/nope'")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("is not an instance directory"), r.err)
    }

    func testBadLaunchFilesMakeNothing() throws {
        let big = String(repeating: "x", count: 65536)
        let manyItems = (0..<129).map { "\"k\($0)\": \"v\"" }.joined(separator: ", ")
        let cases: [(String, String, String)] = [
            ("not json", "Invalid argument", "is not JSON"),
            ("{\"imgae\": \"disk\"}", "Invalid argument", "unknown key 'imgae'"),
            ("{\"image\": \"nope\"}", "No such file", "no active image named 'nope'"),
            ("{\"flavor\": \"nope\"}", "No such file", "no flavor named 'nope'"),
            ("{\"key_name\": \"nope\"}", "No such file", "no key pair named 'nope'"),
            ("{\"network\": \"nope\"}", "No such file", "no network named 'nope'"),
            ("{\"security_groups\": [\"nope\"]}", "No such file", "no security group named 'nope'"),
            ("{\"user_data\": \"\(big)\"}", "Invalid argument", "Nova's limit is 65535"),
            ("{\"metadata\": {\(manyItems)}}", "Disk quota exceeded", "metadata_items"),
            ("{\"metadata\": {\"k\": \"\(String(repeating: "v", count: 256))\"}}", "Invalid argument", "the limit is 255"),
            ("{\"name\": \"other\"}", "Invalid argument", "not bad"),
        ]
        for (i, (spec, errno, reason)) in cases.enumerated() {
            try spec.write(toFile: work + "/bad.json", atomically: true, encoding: .utf8)
            let err = fails("cp '\(work)/bad.json' instances/bad")
            XCTAssertTrue(err.contains(errno), "case \(i): \(err)")
            XCTAssertTrue(read("events").contains(reason), "case \(i): events lack '\(reason)'")
            XCTAssertEqual(ok("ls instances"), "", "case \(i) left something")
        }
        // Metadata written later keeps Nova's limits too.
        ok("mkdir instances/m && timeout 30 cat instances/m/wait")
        XCTAssertTrue(fails("echo x > instances/m/metadata/.hidden").contains("Invalid argument"))
        XCTAssertTrue(fails("printf '%0300d' 0 > instances/m/metadata/k").contains("Invalid argument"))
        XCTAssertTrue(read("events").contains("metadata value of 'k' is 300 characters"))
        XCTAssertTrue(fails("head -c 70000 /dev/zero | tr '\\\\0' x > instances/m/user_data").contains("Invalid argument"))
        XCTAssertEqual(read("instances/m/user_data"), "")
        XCTAssertEqual(ok("ls instances/m/metadata"), "")
    }
}
