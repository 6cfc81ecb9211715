import CloudCore
import Foundation
import XCTest

/// getxattr(2)/listxattr(2): <sys/xattr.h> is not part of Glibc's Swift module.
private typealias GetXattr = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeMutableRawPointer?, Int) -> Int
private typealias ListXattr = @convention(c) (UnsafePointer<CChar>, UnsafeMutablePointer<CChar>?, Int) -> Int
private let getxattr = unsafeBitCast(dlsym(nil, "getxattr"), to: GetXattr.self)
private let listxattr = unsafeBitCast(dlsym(nil, "listxattr"), to: ListXattr.self)

/// `/images` and `/images.d`: cp in, cp out, xattrs, rename, delete, properties, refusals.
final class ImageTests: MountTestCase {
    func testCopyInAndOutOneMebibyte() {
        ok("head -c 1048576 /dev/urandom > $T/src && cp $T/src $MNT/images/disk1")
        XCTAssertEqual(engine.images.get("disk1", admin)?.status, .active)
        ok("cmp $T/src $MNT/images/disk1 && cp $MNT/images/disk1 $T/back && cmp $T/src $T/back")
        XCTAssertEqual(ok("stat -c %s $MNT/images/disk1"), "1048576\n")
        XCTAssertTrue(ok("ls -l $MNT/images").contains(" 1048576 "))
        XCTAssertEqual(ok("cat $MNT/images.d/disk1/status $MNT/images.d/disk1/size $MNT/images.d/disk1/format"),
                       "active\n1048576\nraw\n")
        let sum = ok("sha256sum < $T/src | cut -d' ' -f1")
        XCTAssertEqual(ok("cat $MNT/images.d/disk1/checksum"), sum)
        XCTAssertEqual(ok("ls $MNT/images.d/disk1"),
                       "checksum\ncreated\nformat\nid\nmin_disk\nmin_ram\nproject\nproperties\nshared_with\nsize\nstatus\nvirtual_size\nvisibility\n")
    }

    func testSparseCopyAndCatRedirect() {
        ok("truncate -s 8M $T/sparse && printf 'middle' | dd of=$T/sparse bs=1 seek=3000000 conv=notrunc 2>/dev/null")
        ok("cp $T/sparse $MNT/images/sparse1 && cmp $T/sparse $MNT/images/sparse1")
        XCTAssertEqual(ok("stat -c %s $MNT/images/sparse1"), "8388608\n")
        // bash opens, dup2s and closes the first descriptor before writing: no early commit.
        ok("printf 'hello image' > $T/small && cat $T/small > $MNT/images/small1 && cmp $T/small $MNT/images/small1")
        XCTAssertEqual(engine.images.get("small1", admin)?.size, 11)
        XCTAssertEqual(engine.images.get("small1", admin)?.status, .active)
    }

    func testXattrs() throws {
        ok("printf 'abc' > $T/x && cp $T/x $MNT/images/x1")
        let path = mnt + "/images/x1"
        let size = getxattr(path, "user.cloud.checksum", nil, 0)
        XCTAssertEqual(size, 64, "size probe")
        var small = [UInt8](repeating: 0, count: 10)
        XCTAssertEqual(getxattr(path, "user.cloud.checksum", &small, 10), -1)
        XCTAssertEqual(errno, ERANGE)
        var buf = [UInt8](repeating: 0, count: 100)
        let n = getxattr(path, "user.cloud.checksum", &buf, 100)
        XCTAssertEqual(String(decoding: buf[..<max(0, n)], as: UTF8.self),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        n == 64 ? () : XCTFail("checksum length \(n)")
        let sn = getxattr(path, "user.cloud.status", &buf, 100)
        XCTAssertEqual(String(decoding: buf[..<max(0, sn)], as: UTF8.self), "active")
        XCTAssertEqual(getxattr(path, "user.cloud.nope", &buf, 100), -1)
        XCTAssertEqual(errno, ENODATA)
        XCTAssertEqual(getxattr(path, "security.selinux", &buf, 100), -1)
        XCTAssertEqual(errno, EOPNOTSUPP)
        let ln = listxattr(path, nil, 0)
        var names = [CChar](repeating: 0, count: max(ln, 1))
        XCTAssertEqual(listxattr(path, &names, ln), ln)
        let list = names.withUnsafeBufferPointer { Data(buffer: $0) }.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        XCTAssertEqual(Set(list), Set(["id", "status", "format", "size", "virtual_size", "checksum", "created",
                                       "min_ram", "min_disk"].map { "user.cloud." + $0 }))
    }

    func testRenameDeleteAndProperties() {
        ok("printf 'kernel bytes' > $T/k && cp $T/k $MNT/images/vmlinuz")
        ok("mv $MNT/images/vmlinuz $MNT/images/kernel1")
        XCTAssertEqual(ok("ls $MNT/images $MNT/images.d"), "\(mnt)/images:\nkernel1\n\n\(mnt)/images.d:\nkernel1\n")
        ok("cmp $T/k $MNT/images/kernel1")
        let cross = cloud.sh("mv $MNT/images/kernel1 $MNT/images.d/kernel2 2>&1; ls $MNT/images")
        XCTAssertTrue(cross.out.contains("kernel1"), cross.out)
        // properties: create/write, list, read, remove
        ok("echo 'console=ttyS0 quiet' > $MNT/images.d/kernel1/properties/cmdline")
        ok("touch $MNT/images.d/kernel1/properties/empty")
        XCTAssertEqual(ok("ls $MNT/images.d/kernel1/properties"), "cmdline\nempty\n")
        XCTAssertEqual(ok("cat $MNT/images.d/kernel1/properties/cmdline"), "console=ttyS0 quiet\n")
        XCTAssertEqual(engine.images.get("kernel1", admin)?.properties, ["cmdline": "console=ttyS0 quiet", "empty": ""])
        ok("echo 'console=ttyS1' > $MNT/images.d/kernel1/properties/cmdline")
        XCTAssertEqual(ok("cat $MNT/images.d/kernel1/properties/cmdline"), "console=ttyS1\n")
        ok("rm $MNT/images.d/kernel1/properties/cmdline")
        XCTAssertEqual(ok("ls $MNT/images.d/kernel1/properties"), "empty\n")
        ok("rm $MNT/images/kernel1")
        XCTAssertEqual(ok("ls $MNT/images $MNT/images.d | wc -l"), "3\n")
        XCTAssertNil(engine.images.get("kernel1", admin))
        // The name can be used again at once: a new object, a new inode.
        ok("cp $T/k $MNT/images/kernel1 && cmp $T/k $MNT/images/kernel1")
    }

    func testRefusedCommitIsReportedByCp() {
        // A qcow2 header with a backing file: the cloud refuses it as unsafe at commit.
        ok("""
           printf 'QFI\\373\\0\\0\\0\\3\\0\\0\\0\\0\\0\\0\\0\\150' > $T/bad.qcow2
           head -c 1000 /dev/zero >> $T/bad.qcow2
           """)
        let r = cloud.sh("cp $T/bad.qcow2 $MNT/images/bad")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("Invalid argument"), r.err)
        XCTAssertNil(engine.images.get("bad", admin))
        XCTAssertTrue(cloud.eventually { !self.ok("ls $MNT/images").contains("bad") })
    }

    func testBadNamesAndNonActiveReads() {
        let r = cloud.sh("cp /etc/hostname \"$MNT/images/-bad\"")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("Invalid argument"), r.err)
        XCTAssertTrue(events(containing: "refused").contains { $0.contains("EINVAL") && $0.contains("-bad") })
        // An upload in progress is listed but not readable (EBUSY); every close commits.
        let slow = cloud.sh("""
            (printf abc; sleep 1; printf def) > $MNT/images/slow &
            sleep 0.4
            ls $MNT/images
            cat $MNT/images/slow
            wait
            cat $MNT/images/slow
            """)
        XCTAssertEqual(slow.out, "slow\nabcdef", slow.err)
        XCTAssertTrue(slow.err.contains("Device or resource busy"), slow.err)
        XCTAssertEqual(engine.images.get("slow", admin)?.status, .active)
        XCTAssertTrue(events(containing: "refused /images/slow").contains { $0.contains("EBUSY") })
    }

    func testKilledWriterLeavesNoImage() {
        // dd has written 1 MiB and waits for more from a slow pipe when it is killed.
        let r = cloud.sh("""
            { head -c 1048576 /dev/zero; sleep 3; } | dd of=$MNT/images/big bs=64k 2>/dev/null &
            pid=$!
            sleep 0.7
            kill -9 $pid
            wait $pid
            echo done
            """)
        XCTAssertTrue(r.out.contains("done"), r.err)
        assertAborted("big", signal: 9, r)
        // The same with a writer still streaming (the kill lands in the middle of WRITEs).
        let r2 = cloud.sh("""
            head -c 4G /dev/zero > $MNT/images/huge &
            pid=$!
            sleep 0.5
            kill -9 $pid
            wait $pid
            echo done
            """)
        XCTAssertTrue(r2.out.contains("done"), r2.err)
        assertAborted("huge", signal: 9, r2)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: cloud.state + "/images")) ?? []
        XCTAssertEqual(files, [], "no bytes left behind")
    }

    private func assertAborted(_ name: String, signal: Int, _ r: ShellResult, line: UInt = #line) {
        XCTAssertTrue(cloud.eventually { self.engine.images.get(name, self.admin) == nil },
                      "upload should be aborted: \(r.out) \(r.err)\n\(engine.events.lines.suffix(8).joined(separator: "\n"))",
                      line: line)
        let aborted = events(containing: "image.killed \(name)").last ?? ""
        XCTAssertTrue(aborted.contains("writer killed by signal \(signal)"), aborted, line: line)
        XCTAssertTrue(events(containing: "image.active \(name) ").isEmpty, line: line)
        XCTAssertFalse(ok("ls $MNT/images").contains(name), line: line)
    }
}
