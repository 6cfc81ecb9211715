import CloudCore
import Foundation
import XCTest

/// The static parts of the tree: root listing, README, defaults, flavors, hosts, modes.
final class TreeTests: MountTestCase {
    func testRootListingAndReadme() {
        XCTAssertEqual(ok("ls $MNT"), "README\nconfig\ndefaults\nevents\nflavors\nfloating-ips\ngroups\nhosts\nimages\nimages.d\ninstances\nkeypairs\nkeypairs.d\nnetworks\nprojects\nscheduler\nsecurity-groups\nusers\nvolumes\n")
        XCTAssertEqual(ok("cat $MNT/README"), engine.readme)
        XCTAssertEqual(ok("stat -c '%a %s' $MNT/README"), "444 \(engine.readme.utf8.count)\n")
        XCTAssertEqual(ok("stat -c '%a %F' $MNT/instances $MNT/images $MNT/flavors"),
                       "1777 directory\n1777 directory\n755 directory\n")
        XCTAssertEqual(ok("ls $MNT/defaults"), "availability_zone\nflavor\ngroup\nimage\nkey_name\nnetwork\nproject\nvolume_backend\nvolume_size_gb\n")
        XCTAssertEqual(ok("cat $MNT/defaults/flavor"), "m1.nano\n")
        XCTAssertEqual(ok("stat -c %s $MNT/defaults/image"), "0\n")
        XCTAssertEqual(ok("stat -c %a $MNT/defaults/flavor"), "644\n")
    }
}

extension TreeTests {
    func testFlavorsAndHosts() {
        XCTAssertTrue(ok("ls $MNT/flavors").contains("m1.nano\nm1.small\n"))
        XCTAssertEqual(ok("cat $MNT/flavors/m1.tiny/ram_mb $MNT/flavors/m1.tiny/vcpus"), "512\n1\n")
        ok("mkdir $MNT/flavors/f1 && echo 4 > $MNT/flavors/f1/vcpus && echo 2048 > $MNT/flavors/f1/ram_mb")
        XCTAssertEqual(ok("cat $MNT/flavors/f1/vcpus $MNT/flavors/f1/ram_mb $MNT/flavors/f1/disk_gb"), "4\n2048\n1\n")
        let bad = cloud.sh("echo lots > $MNT/flavors/f1/vcpus")
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.err.contains("Invalid argument"), bad.err)
        ok("rmdir $MNT/flavors/f1")
        XCTAssertFalse(ok("ls $MNT/flavors").contains("f1"))
        XCTAssertEqual(ok("ls $MNT/hosts"), "default\n")
        XCTAssertEqual(ok("cat $MNT/hosts/default/uri $MNT/hosts/default/state"), "test:///default\nup\n")
        XCTAssertEqual(ok("cat $MNT/hosts/default/instances | wc -c"), "0\n")
        XCTAssertEqual(ok("stat -c '%a %u' $MNT/hosts/default/vcpus"), "444 0\n")
    }

    func testDefaultsWriteApplyAtWriteTime() throws {
        ok("echo m1.small > $MNT/defaults/flavor")
        XCTAssertEqual(ok("cat $MNT/defaults/flavor"), "m1.small\n")
        XCTAssertEqual(engine.settings.defaultValue(.flavor, admin), "m1.small")
        // The value is applied at write time: the shell sees the refusal as a write error.
        let r = cloud.sh("echo no-such-flavor > $MNT/defaults/flavor")
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("write error: No such file or directory"), r.err)
        XCTAssertEqual(ok("cat $MNT/defaults/flavor"), "m1.small\n")
        // A second write at an offset > 0 is refused; O_TRUNC / truncate is accepted.
        let two = cloud.sh("printf 'm1.tiny\\n' > $MNT/defaults/flavor && truncate -s 0 $MNT/defaults/flavor")
        XCTAssertEqual(two.status, 0, two.err)
        try engine.projects.create("abc", admin)
        let append = cloud.sh("(printf abc; printf def) > $MNT/defaults/project")
        XCTAssertNotEqual(append.status, 0)
        XCTAssertTrue(append.err.contains("Invalid argument"), append.err)
        XCTAssertEqual(engine.settings.defaultValue(.project, admin), "abc", "first write applied, second refused")
    }

    func testReadOnlyFilesAreEROFSAndRecorded() {
        let r = cloud.sh("echo hi > $MNT/README")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("Read-only file system"), r.err)
        let line = events(containing: "refused /README").last ?? ""
        XCTAssertTrue(line.contains("errno=EROFS"), line)
        XCTAssertTrue(line.contains("pid="), line)
        XCTAssertTrue(line.contains("uid=0"), line)
        let t = cloud.sh("touch $MNT/hosts/default/newfile")
        XCTAssertNotEqual(t.status, 0)
        let rm = cloud.sh("rm -f $MNT/hosts/default/uri")
        XCTAssertNotEqual(rm.status, 0)
        XCTAssertTrue(rm.err.contains("Operation not permitted"), rm.err)
        XCTAssertEqual(cloud.sh("mkdir $MNT/hosts/.node2").status, 1)
        XCTAssertEqual(cloud.sh("mkdir $MNT/images.d/x").status, 1)
        XCTAssertEqual(cloud.sh("mv $MNT/flavors/m1.tiny $MNT/flavors/m1.tiny2").status, 1)
    }

    func testStatfsAndNegativeLookups() {
        XCTAssertEqual(cloud.sh("df $MNT").status, 0)
        XCTAssertNotEqual(cloud.sh("cat $MNT/nonexistent").status, 0)
        XCTAssertNotEqual(cloud.sh("cat $MNT/instances/nobody/status").status, 0)
        XCTAssertNotEqual(cloud.sh("ls $MNT/defaults/nothing").status, 0)
    }
}

/// The tree comes from the collection registry: every collection is a directory of the
/// root (whose link count follows them), and every member directory lists its field table.
final class RegistryTests: MountTestCase {
    func testRootListsEveryCollectionAndCountsItsLinks() throws {
        let dirs = ok("find $MNT -mindepth 1 -maxdepth 1 -type d | wc -l").trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(ok("stat -c %h $MNT"), "\(2 + (Int(dirs) ?? -1))\n", "2 + one link per subdirectory")
        XCTAssertEqual(Int(dirs), 17)
        try cloud.addImage()
        ok("mkdir $MNT/groups/g1 $MNT/security-groups/s1 $MNT/instances/vm1")
        XCTAssertEqual(ok("ls $MNT/groups/g1"), "members\npolicy\n")
        XCTAssertEqual(ok("ls $MNT/security-groups/s1"), "rules\n")
        XCTAssertEqual(ok("ls $MNT/networks/default | wc -l"), "13\n")
        XCTAssertEqual(ok("stat -c %h $MNT/images.d/tiny"), "3\n", "a member with a key directory")
        XCTAssertEqual(ok("stat -c '%a %U' $MNT/instances/vm1/ctl $MNT/hosts/default/ctl"), "200 root\n200 root\n")
        ok("cat $MNT/instances/vm1/wait")
    }
}
