import CloudTesting
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// "Bad input never hurts": random sequences of file operations against a real mount on
/// three `test:///` hosts: random, empty, huge (1 MiB), NUL-laden and non-UTF-8 writes to
/// every writable file, writes at nonzero offsets and to read-only files, mkdir/rmdir with
/// weird names, valid actions and instance churn mixed in. After every operation: the
/// daemon answers, a refusal is one of the documented errnos (never EIO), a refusal made
/// by the daemon has its line in /events with a reason, and a refused write to a stable
/// instance left its states alone. At the end: every instance settles, and deleting them
/// all gives every host's resources back.
///
/// `CLOUDFS_FUZZ_SECONDS` bounds the run (default 25), `CLOUDFS_FUZZ_SEED` replays one.
final class FuzzMountTests: MountTestCase {
    override var hostArgs: [String] {
        ["small", "medium", "large"].flatMap { ["--host", "test://\(TestPaths.packageRoot)/examples/hosts/\($0).xml"] }
    }

    /// Refusals a user may see; everything else (EIO above all) is a bug.
    static let allowed: Set<Int32> = [EINVAL, EROFS, EBUSY, EPERM, ENOENT, EEXIST, ENAMETOOLONG, EACCES,
                                      ENOSPC, EISDIR, ENOTDIR, ENOTEMPTY, EDQUOT]
    /// Refusals only the daemon makes (the kernel never does for the calls made here), so
    /// each must come with a `.refused` line and a reason in /events.
    static let explained: Set<Int32> = [EINVAL, EROFS, EBUSY, EPERM, EACCES, ENOSPC, EDQUOT]
    static let stable: Set<String> = ["ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED", "ERROR"]

    override func setUpWithError() throws {
        try super.setUpWithError()
        ok("head -c 1M /dev/zero > '\(work)/d.raw' && cp '\(work)/d.raw' images/disk && echo m1.nano > defaults/flavor")
        ok("mkdir flavors/fz groups/g1 && echo 64 > flavors/fz/ram_mb && echo 0 > flavors/fz/disk_gb")
    }

    func testBadInputNeverHurts() throws {
        let env = ProcessInfo.processInfo.environment
        let seconds = Double(env["CLOUDFS_FUZZ_SECONDS"] ?? "") ?? 25
        let seed = UInt64(env["CLOUDFS_FUZZ_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64(UInt32.max))
        print("FuzzMountTests: seed \(seed) (CLOUDFS_FUZZ_SEED=\(seed) replays), \(seconds) s")
        let fuzzer = MountFuzzer(mnt: mnt, seed: seed)
        defer { fuzzer.close() }
        fuzzer.run(seconds: seconds)
        print("FuzzMountTests: \(fuzzer.count) operations; outcomes:")
        for (k, n) in fuzzer.tally.sorted(by: { $0.key < $1.key }) { print("  \(k): \(n)") }
        for (problem, n) in fuzzer.problems.sorted(by: { $0.key < $1.key }) {
            XCTFail("seed \(seed): \(problem) (\(n)x)")
        }
        if fuzzer.watchdog.hung || fuzzer.dead {
            if fuzzer.watchdog.hung { Watchdog.abortConnection(mnt) }
            let log = sh("grep -a -m1 -A30 -E 'Fatal error|crashed|Crash' '\(state)/cloudfs.log' || tail -n 30 '\(state)/cloudfs.log'").out
            return XCTFail("seed \(seed): the mount stopped answering; last operations:\n"
                           + fuzzer.recent.joined(separator: "\n") + "\ndaemon log:\n" + log)
        }

        // Every instance settles in a stable status.
        ok("for h in hosts/*; do echo enable > $h/ctl 2>/dev/null; done; true")
        for name in ok("ls instances").split(separator: "\n").map(String.init) {
            let status = sh("timeout 60 cat '\(mnt)/instances/\(name)/wait'").out.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertTrue(Self.stable.contains(status), "seed \(seed): \(name) did not settle: '\(status)' \(read("instances/\(name)/fault"))")
        }
        // Deleting them all releases everything.
        ok("for i in instances/*; do [ -d \"$i\" ] && rmdir \"$i\"; done; true")
        var left = "?"
        for _ in 0..<600 where !left.isEmpty { left = ok("ls instances"); usleep(100_000) }
        if !left.isEmpty {
            let why = sh("cd '\(mnt)' && for i in instances/*; do echo $i $(cat $i/status $i/task_state $i/host) $(cat $i/fault); done; "
                         + "grep -v refused events | tail -n 40").out
            XCTFail("seed \(seed): instances left after rmdir:\n\(why)")
        }
        for host in ok("ls hosts").split(separator: "\n").map(String.init) {
            XCTAssertEqual(read("hosts/\(host)/instances"), "", "seed \(seed): \(host) still holds instances")
            for used in ["vcpus_used", "ram_mb_used", "disk_gb_used"] {
                let v = read("hosts/\(host)/\(used)")
                XCTAssertTrue(v == "0" || v.isEmpty, "seed \(seed): hosts/\(host)/\(used) is \(v) with no instances")
            }
        }
        XCTAssertEqual(RawFS.answers(mnt + "/README"), 0)
    }

    /// Found by the fuzzer: "pause" padded to 1 MiB + 1 reached the daemon as two WRITEs;
    /// the first paused the instance, the second was refused, and write(2) returned short.
    /// Such a value is now refused whole (EINVAL) and the instance stays as it was.
    func testHugeWriteOfAValidActionIsRefusedWhole() {
        ok("mkdir instances/big && timeout 30 cat instances/big/wait")
        for size in [(1 << 20) + 1, 1 << 20, 70_000] {
            let data = Array("pause".utf8) + [UInt8](repeating: 32, count: size - 5)
            let outcome = RawFS.write(Array("\(mnt)/instances/big/ctl".utf8), data, offset: 0)
            XCTAssertEqual(RawFS.name(outcome.errno), "EINVAL", "\(size) bytes")
            XCTAssertFalse(outcome.short, "\(size) bytes")
            XCTAssertEqual(read("instances/big/status"), "ACTIVE", "\(size) bytes")
        }
        XCTAssertTrue(read("events").contains("a value is at most 65536 bytes"))
        ok("echo pause > instances/big/ctl && timeout 30 cat instances/big/wait")
        XCTAssertEqual(read("instances/big/status"), "PAUSED")
    }
}

/// The fuzzer proper: picks operations from what the tree shows, runs them through the
/// watchdog and checks the per-operation invariants.
final class MountFuzzer {
    let mnt: String
    var rng: SeededRandom
    let watchdog = Watchdog()
    private(set) var count = 0
    /// "op errno" -> how often, printed at the end.
    private(set) var tally: [String: Int] = [:]
    /// Invariant violations, deduplicated by message.
    private(set) var problems: [String: Int] = [:]
    /// The last operations, for a hang report.
    private(set) var recent: [String] = []
    private let eventsFD: Int32
    /// The mount stopped answering: the run ends there.
    private(set) var dead = false
    private let instancePool = ["a", "b", "c", "d", "e", "f"]

    init(mnt: String, seed: UInt64) {
        self.mnt = mnt
        rng = SeededRandom(seed: seed)
        eventsFD = Glibc.open(mnt + "/events", O_RDONLY | O_CLOEXEC)
    }

    func close() { if eventsFD >= 0 { _ = Glibc.close(eventsFD) } }

    func problem(_ s: String) { problems[s, default: 0] += 1 }

    // MARK: the run

    func run(seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end, !watchdog.hung, !dead, problems.count < 50 {
            step()
            count += 1
            if count % 25 == 0 { refresh() }
        }
    }

    /// What exists now (refreshed every few operations).
    private var instances: [String] = []
    private var hosts: [String] = []
    private var flavors: [String] = []
    private var groups: [String] = []
    private var schedulerFiles: [String] = []
    private var properties: [String] = []

    private func list(_ dir: String) -> [String] {
        watchdog.run(10) { [mnt] in (try? FileManager.default.contentsOfDirectory(atPath: mnt + "/" + dir)) ?? [] } ?? []
    }

    private func refresh() {
        instances = list("instances")
        hosts = list("hosts")
        flavors = list("flavors")
        groups = list("groups")
        schedulerFiles = list("scheduler").filter { $0 != "last" }
        properties = list("images.d/disk/properties")
    }

    private func pick<T>(_ xs: [T]) -> T? { xs.isEmpty ? nil : xs[Int.random(in: 0..<xs.count, using: &rng)] }
    private func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }

    // MARK: payloads

    static let dictionary: [String] = [
        "start", "stop", "reboot", "reboot hard", "pause", "unpause", "suspend", "resume", "lock", "unlock",
        "migrate", "migrate large", "migrate nowhere", "migrate ../..", "rebuild", "confirm-resize", "revert-resize",
        "enable", "disable", "evacuate", "reboot  hard", "reboot\thard", "stop\r\n", "stop\n\n\n", "STOP", " stop ",
        "0", "-1", "1", "7", "16", "1024", "1025", "16777216", "16777217", "2147483648", "9223372036854775807",
        "9223372036854775808", "-9223372036854775808", "1e308", "-1e308", "1e-308", "nan", "inf", "-inf", "0x10",
        "1.5", "  3  ", "+3", "١٢", "true", "false", "yes", "2", "filter", "chance", "chance_scheduler",
        "m1.nano", "m1.xlarge", "fz", "disk", "g1", "nope", "small", "large", "default", "affinity",
        "anti-affinity", "soft-affinity", "soft-anti-affinity", "m1.tiny", "m1.small", "reap", "log", "noop", "RamFilter", "RamFilter\nCoreFilter",
        "NoSuchFilter", "RAMWeigher", "RAMWeigher=1e308", "RAMWeigher=nan", "", "\n", "\r\n", "\0", "a=b",
        "\"quoted\"", "zone1", "test:///default", "../../etc/passwd", String(repeating: "x", count: 64),
    ]

    private func randomBytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }

    /// Bytes to write: (bytes, what they are, for the tally).
    private func payload() -> ([UInt8], String) {
        switch Int.random(in: 0..<100, using: &rng) {
        case 0..<35: return (Array(pick(Self.dictionary)!.utf8) + (chance(0.5) ? [10] : []), "word")
        case 35..<45: return ([], "empty")
        case 45..<55: return (randomBytes(Int.random(in: 1...64, using: &rng)), "random")
        case 55..<62:
            let w = Array(pick(Self.dictionary)!.utf8)
            return (w + [0] + randomBytes(Int.random(in: 0...8, using: &rng)), "nul")
        case 62..<70: return (Array(pick(Self.dictionary)!.utf8) + [0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80], "non-utf8")
        case 70..<75: return (randomBytes(1 << 20), "huge-random")
        case 75..<80:
            // A valid word padded to 1 MiB (+1): the kernel may split it into several WRITEs.
            let w = Array(pick(Self.dictionary)!.utf8)
            return (w + [UInt8](repeating: 32, count: (1 << 20) - w.count + (chance(0.5) ? 1 : 0)), "huge-padded")
        case 80..<85: return (Array(String(repeating: pick(Self.dictionary)! + " ", count: 50).utf8), "long")
        default: return (Array((pick(Self.dictionary)! + String(Int.random(in: -5...99999, using: &rng))).utf8), "word+n")
        }
    }

    /// Names for mkdir/rmdir/create, many of them not acceptable.
    private func weirdName() -> [UInt8] {
        let names: [[UInt8]] = [
            [], Array(".".utf8), Array("..".utf8), Array("...".utf8), Array(".hidden".utf8), Array("-x".utf8),
            Array("a b".utf8), Array("ünï".utf8), Array("名前".utf8), Array("a\nb".utf8), Array("a\tb".utf8),
            Array("*".utf8), Array("x:y".utf8), Array("a/b".utf8), Array("a=b".utf8), Array("\"q\"".utf8),
            Array(repeating: UInt8(ascii: "a"), count: 63), Array(repeating: UInt8(ascii: "b"), count: 64),
            Array(repeating: UInt8(ascii: "c"), count: 255), Array(repeating: UInt8(ascii: "d"), count: 256),
            [0xff, 0xfe], [0x61, 0xc0, 0x80], Array("ok-name".utf8), Array("fz".utf8), Array("g1".utf8),
            Array("m1.nano".utf8), Array("last".utf8), Array("ctl".utf8),
        ]
        if chance(0.15) {
            return randomBytes(Int.random(in: 1...40, using: &rng)).map { $0 == 0 || $0 == 47 ? 120 : $0 }
        }
        return pick(names)!
    }

    /// True when the kernel, not the daemon, may decide a call on `name` (".", "..", "",
    /// over 255 bytes, a slash).
    private func kernelDecides(_ name: [UInt8]) -> Bool {
        name.isEmpty || name == Array(".".utf8) || name == Array("..".utf8) || name.count > 255 || name.contains(47)
    }

    // MARK: targets

    private func writableFiles() -> [String] {
        var files = DefaultKeys.all.map { "defaults/\($0)" }
        files += schedulerFiles.map { "scheduler/\($0)" }
        files += ["resize_confirm_window", "running_deleted_instance_action", "instance_build_timeout",
                  "sync_power_state_interval", "shutdown_timeout"].map { "config/\($0)" }
        for i in instances { files += ["ctl", "group", "flavor", "image"].map { "instances/\(i)/\($0)" } }
        for h in hosts { files += ["ctl", "availability_zone"].map { "hosts/\(h)/\($0)" } }
        for f in flavors { files += ["vcpus", "ram_mb", "disk_gb"].map { "flavors/\(f)/\($0)" } }
        for g in groups { files.append("groups/\(g)/policy") }
        files += (properties + ["kernel", "ramdisk", "cmdline", "fuzzkey", "hw_disk_bus"]).map { "images.d/disk/properties/\($0)" }
        return files
    }

    private func readOnlyFiles() -> [String] {
        var files = ["README", "events", "scheduler/last", "images.d/disk/size", "images.d/disk/status",
                     "images.d/disk/checksum"]
        for i in instances {
            files += ["status", "vm_state", "task_state", "power_state", "fault", "host", "ip", "mac", "id",
                      "created", "project", "info.json", "domain.xml", "console", "wait"].map { "instances/\(i)/\($0)" }
        }
        for h in hosts { files += ["state", "vcpus", "ram_mb_used", "instances", "hypervisor_type"].map { "hosts/\(h)/\($0)" } }
        for g in groups { files.append("groups/\(g)/members") }
        return files
    }

    private let directories = ["", "defaults", "images", "images.d", "images.d/disk", "images.d/disk/properties",
                               "instances", "flavors", "hosts", "scheduler", "groups", "instances/a", "flavors/fz",
                               "hosts/small", "groups/g1", "README", "events"]

    /// The instance a path belongs to (`instances/NAME/...`), for the state check.
    private func instanceOf(_ path: String) -> String? {
        let parts = path.split(separator: "/")
        return parts.count >= 3 && parts[0] == "instances" ? String(parts[1]) : nil
    }

    private func bytes(_ rel: String) -> [UInt8] { Array((mnt + "/" + rel).utf8) }

    // MARK: one operation

    private func step() {
        let roll = Int.random(in: 0..<100, using: &rng)
        switch roll {
        case 0..<38:
            guard let file = pick(writableFiles()) else { return }
            var (data, kind) = payload()
            // A random URI could make libvirt reach out; a URI without ':' is always refused.
            if file.hasSuffix("/uri") { data = data.filter { $0 != UInt8(ascii: ":") } }
            let offset: Int64 = chance(0.12) ? Int64.random(in: 1...(1 << 20), using: &rng) : 0
            let op = "write \(Self.kind(of: file))\(offset > 0 ? " at-offset" : "")"
            perform(op, describe: "write \(file) [\(data.count) bytes \(kind)] @\(offset)", instance: instanceOf(file)) {
                [path = bytes(file), data] in RawFS.write(path, data, offset: offset)
            }
        case 38..<48:
            guard let i = pick(instances) else { return mkdirInstance() }
            let action = pick(["start", "stop", "reboot", "reboot hard", "pause", "unpause", "suspend", "resume",
                               "lock", "unlock", "migrate", "migrate large", "migrate small",
                               "rebuild", "confirm-resize", "revert-resize"])!
            perform("action \(action)", describe: "echo \(action) > instances/\(i)/ctl", instance: i) {
                [path = bytes("instances/\(i)/ctl")] in RawFS.write(path, Array((action + "\n").utf8), offset: 0)
            }
        case 48..<56:
            guard let file = pick(readOnlyFiles()) else { return }
            let (data, kind) = payload()
            perform("write read-only \(Self.kind(of: file))", describe: "write \(file) [\(kind)]", instance: instanceOf(file)) {
                [path = bytes(file)] in RawFS.write(path, data, offset: 0)
            }
        case 56..<64:
            let dir = pick(directories)!
            let name = weirdName()
            let kernel = kernelDecides(name)
            perform("mkdir \(dir.isEmpty ? "/" : dir)", describe: "mkdir \(dir)/\(Self.show(name))", kernel: kernel) {
                [path = bytes(dir) + [47] + name] in RawFS.mkdir(path)
            }
        case 64..<68:
            // rmdir of weird names and of what the fuzzer made, never of the real hosts.
            let dir = pick(["flavors", "groups", "hosts", "instances", "images.d", "defaults", ""])!
            var name = weirdName()
            if ["small", "medium", "large", "disk"].contains(String(decoding: name, as: UTF8.self)) { name = Array("zz".utf8) }
            perform("rmdir \(dir.isEmpty ? "/" : dir)", describe: "rmdir \(dir)/\(Self.show(name))", kernel: kernelDecides(name)) {
                [path = bytes(dir) + [47] + name] in RawFS.rmdir(path)
            }
        case 68..<76:
            mkdirInstance()
        case 76..<80:
            guard let i = pick(instances) else { return }
            perform("rmdir instance", describe: "rmdir instances/\(i)") { [path = bytes("instances/\(i)")] in RawFS.rmdir(path) }
        case 80..<85:
            let dir = pick(directories)!
            let name = weirdName()
            perform("create in \(dir.isEmpty ? "/" : dir)", describe: "create \(dir)/\(Self.show(name))", kernel: kernelDecides(name)) {
                [path = bytes(dir) + [47] + name] in
                RawFS.write(path, Array("x\n".utf8), offset: 0, flags: O_WRONLY | O_CREAT | O_EXCL)
            }
        case 85..<89:
            let candidates = readOnlyFiles() + ["defaults/flavor", "flavors/fz", "groups/g1", "hosts/small/ctl", "instances"]
            guard var file = pick(candidates) else { return }
            var op = "unlink \(Self.kind(of: file))"
            if chance(0.3) {
                let dir = pick(directories)!
                file = dir + "/" + String(decoding: weirdName().filter { $0 != 47 && $0 != 0 }, as: UTF8.self)
                op = "unlink in \(dir.isEmpty ? "/" : dir)"
            }
            perform(op, describe: "unlink \(file)", instance: instanceOf(file)) {
                [path = bytes(file)] in RawFS.unlink(path)
            }
        case 89..<93:
            guard let file = pick(writableFiles() + readOnlyFiles()) else { return }
            let size = pick([0, 1, 4096, Int64(1) << 40])!
            perform("truncate \(Self.kind(of: file))", describe: "truncate \(file) \(size)", instance: instanceOf(file)) {
                [path = bytes(file)] in RawFS.truncate(path, size)
            }
        case 93..<96:
            let from = pick(["instances/a", "flavors/fz", "groups/g1", "defaults/flavor", "hosts/small/ctl", "images/nope"])!
            let to = pick(["instances/b", "flavors/fz2", "images/x", "defaults/image", "groups/g2"])!
            perform("rename \(Self.kind(of: from))", describe: "mv \(from) \(to)", extra: [EXDEV]) {
                [f = bytes(from), t = bytes(to)] in RawFS.rename(f, t)
            }
        default:
            guard let file = pick(readOnlyFiles() + writableFiles().filter { !$0.hasSuffix("ctl") }),
                  !file.hasSuffix("/wait") else { return }
            perform("read \(Self.kind(of: file))", describe: "cat \(file)") {
                [path = bytes(file)] in SyscallOutcome(errno: RawFS.read(path).0)
            }
        }
    }

    /// mkdir of an instance with a pool name (mostly valid, so instances come and go).
    private func mkdirInstance() {
        guard instances.count < instancePool.count || chance(0.2) else { return }
        let name = pick(instancePool)!
        perform("mkdir instance", describe: "mkdir instances/\(name)") { [path = bytes("instances/\(name)")] in RawFS.mkdir(path) }
        if !instances.contains(name) { instances.append(name) }
    }

    /// A path with object names folded away, so outcomes group by file (`instances/*/ctl`).
    static func kind(of path: String) -> String {
        let p = path.split(separator: "/").map(String.init)
        guard p.count >= 3, ["instances", "hosts", "flavors", "groups"].contains(p[0]) else {
            return p.count >= 4 && p[0] == "images.d" ? "images.d/*/properties/*" : path
        }
        return "\(p[0])/*/" + p[2...].joined(separator: "/")
    }

    static func show(_ name: [UInt8]) -> String {
        let s = String(decoding: name, as: UTF8.self)
        return s.count > 24 ? "\(s.prefix(8))…(\(name.count) bytes)" : s.debugDescription
    }

    /// The states a refused write must leave alone (vm_state, task_state, status, flavor),
    /// from one read of info.json, so they are one consistent snapshot.
    private func states(_ name: String) -> [String] {
        watchdog.run(10) { [mnt] in
            let (e, bytes) = RawFS.read(Array("\(mnt)/instances/\(name)/info.json".utf8))
            guard e == 0 else { return [RawFS.name(e)] }
            guard let o = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return ["unparsable"] }
            return ["vm_state", "task_state", "status", "flavor"].map { (o[$0] as? String) ?? "?" }
        } ?? []
    }

    static func has(_ line: ArraySlice<UInt8>, _ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard line.count >= needle.count else { return false }
        var i = line.startIndex
        while i + needle.count <= line.endIndex {
            if line[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }

    private func drainEvents() -> [UInt8] {
        guard eventsFD >= 0 else { return [] }
        return watchdog.run(10) { [fd = eventsFD] in
            var all: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                all += buf[0..<n]
            }
            return all
        } ?? []
    }

    /// Runs one operation and checks what it did.
    private func perform(_ op: String, describe: String, instance: String? = nil, kernel: Bool = false,
                         extra: Set<Int32> = [], _ body: @escaping @Sendable () -> SyscallOutcome) {
        recent.append(describe)
        if recent.count > 20 { recent.removeFirst() }
        // Only an idle instance (no task running) must stand still while it refuses.
        let before = instance.map(states).flatMap { $0.count == 4 && $0[1] == "none" ? $0 : nil }
        _ = drainEvents()
        guard let outcome = watchdog.run(30, body) else { return problem("hang: \(describe)") }
        let label = outcome.short ? "short-write" : RawFS.name(outcome.errno)
        tally["\(op) → \(label)", default: 0] += 1

        if outcome.errno != 0 && !FuzzMountTests.allowed.contains(outcome.errno) && !extra.contains(outcome.errno) {
            problem("\(op) returned \(label): e.g. \(describe)")
        }
        if FuzzMountTests.explained.contains(outcome.errno) && !kernel {
            let name = RawFS.name(outcome.errno)
            // Matched as bytes: a weird name in a line must not turn the match into a grapheme puzzle.
            let events = drainEvents()
            let lines = events.split(separator: 10)
            if !lines.contains(where: { Self.has($0, ".refused ") && Self.has($0, "errno=\(name)") && Self.has($0, "reason=") }) {
                problem("\(op) → \(name) without a refusal line in /events: e.g. \(describe); events: "
                        + String(decoding: events.suffix(400), as: UTF8.self).debugDescription)
            }
        }
        if outcome.refused, let instance, let before, case let after = states(instance), after != before {
            problem("refused \(op) (\(label)) changed instance state \(before) → \(after): e.g. \(describe)")
        }
        // /events has attribute timeout 0: its stat always reaches the daemon.
        let alive = watchdog.run(10) { [mnt] in RawFS.answers(mnt + "/events") }
        if alive != 0 || outcome.errno == ENOTCONN {
            problem("mount stopped answering (\(alive.map(RawFS.name) ?? "hang")) after: \(describe)")
            dead = true
        }
    }
}

/// The files of /defaults/ (CloudCore's DefaultKey, spelled out: the tests see the tree only).
enum DefaultKeys {
    static let all = ["image", "flavor", "network", "project", "group", "availability_zone"]
}
