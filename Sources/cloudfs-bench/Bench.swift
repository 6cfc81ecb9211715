import ArgumentParser
import CloudCore
import Foundation
import LibvirtCompute

/// `cloudfs-bench`: measures cloudfs against baselines taken in the same run, and prints
/// ratios (DESIGN: "benchmarks are a program, not a timed test").
@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cloudfs-bench",
        abstract: "Benchmark cloudfs against same-run baselines.")

    @Option(help: "Size of the image copied into /images, in MiB.") var imageMib = 1024
    @Option(help: "Instances created for the listing benchmark.") var instances = 1000
    @Option(help: "Samples of mkdir → ACTIVE latency.") var samples = 200
    @Option(help: "Work directory (on the disk to measure).") var work = "/var/tmp/cloudfs-bench"
    @Option(help: "Instances stopped and started at once by the actions benchmark.") var actionInstances = 100
    @Option(help: "Stop + start rounds of the actions benchmark.") var actionRounds = 5
    @Option(help: "Instances in the cloud the restart benchmark restarts.") var restartInstances = 1000
    @Option(help: "Fixed IPs allocated concurrently on a /16 network.") var fixedIps = 20000
    @Option(help: "Attach + detach cycles of the volumes benchmark.") var volumeCycles = 10
    @Option(help: "Instances on the dashboard benchmark's instances page.") var dashboardInstances = 1000
    @Option(help: "The tiny guest's directory (examples/make-tiny-guest.sh) for the volumes benchmark.")
    var guest = ProcessInfo.processInfo.environment["CLOUDFS_GUEST_DIR"] ?? "./guest"
    @Option(help: "Live migrations through the tree (and as many with virsh) in the migration section.") var migrationRounds = 6
    @Option(help: "Instances for the listing and restart sections at once (10000 is the issue's scale; 100000 the long run, not the default).")
    var scale: Int?
    @Option(help: "Sections to run, comma-separated names or numbers: \(Self.sectionNames.joined(separator: ", ")), or all.")
    var sections = "all"

    static let sectionNames = ["scheduler", "copy", "latency", "listing", "burst", "actions", "restart", "ipam", "projects", "volumes", "dashboard", "migration"]

    func validate() throws {
        _ = try selected()
    }

    /// The sections asked for, by name.
    func selected() throws -> Set<String> {
        var out = Set<String>()
        for word in sections.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
            if word == "all" { out.formUnion(Self.sectionNames) } else if let n = Int(word), Self.sectionNames.indices.contains(n) {
                out.insert(Self.sectionNames[n])
            } else if Self.sectionNames.contains(word) { out.insert(word) } else {
                throw ValidationError("unknown section '\(word)'; sections: \(Self.sectionNames.joined(separator: ", ")), all")
            }
        }
        return out
    }

    /// The command line that runs one section again with this run's options.
    func reproduce(_ section: String, _ options: String) -> String {
        "\(CommandLine.arguments[0]) --sections \(section) --work '\(work)'" + (options.isEmpty ? "" : " " + options)
    }

    func run() throws {
        let want = try selected()
        print("cloudfs-bench  (\(ProcessInfo.processInfo.activeProcessorCount) cores, state and baseline on \(work))\n")
        if want.contains("scheduler") { SchedulerBench(reproduce: reproduce("scheduler", "")).run() }
        let instances = scale ?? self.instances, restartInstances = scale ?? self.restartInstances
        if !want.isDisjoint(with: ["copy", "latency", "listing"]) {
            let rig = try Rig(work: work, hosts: 4, capacityFor: want.contains("listing") ? instances : 0)
            defer { rig.tearDown() }
            if want.contains("copy") { try CopyBench(rig: rig, mib: imageMib, reproduce: reproduce("copy", "--image-mib \(imageMib)")).run() }
            if want.contains("latency") { try LatencyBench(rig: rig, samples: samples, reproduce: reproduce("latency", "--samples \(samples)")).run() }
            if want.contains("listing") {
                try ListingBench(rig: rig, count: instances, reproduce: reproduce("listing", "--instances \(instances)")).run()
            }
        }
        if want.contains("burst") {
            let burst = try Rig(work: work + "-burst", hosts: 50, cores: 2, memoryGiB: 1)
            defer { burst.tearDown() }
            try BurstBench(rig: burst, count: 500, reproduce: reproduce("burst", "")).run()
        }
        if want.contains("actions") {
            let rig = try Rig(work: work + "-actions", hosts: 4)
            defer { rig.tearDown() }
            try ActionBench(rig: rig, count: actionInstances, rounds: actionRounds,
                            reproduce: reproduce("actions", "--action-instances \(actionInstances) --action-rounds \(actionRounds)")).run()
        }
        if want.contains("restart") {
            // Hosts big enough for every m1.nano (1 vCPU, 128 MiB, 1 GB) at the default ratios
            // (CoreFilter 4:1 over 4 hosts).
            let rig = try Rig(work: work + "-restart", hosts: 4, capacityFor: restartInstances)
            defer { rig.tearDown() }
            try RestartBench(rig: rig, count: restartInstances,
                             reproduce: reproduce("restart", "--restart-instances \(restartInstances)")).run()
        }
        if want.contains("ipam") { try FixedIPBench(work: work + "-ipam", count: fixedIps, reproduce: reproduce("ipam", "--fixed-ips \(fixedIps)")).run() }
        if want.contains("projects") {
            let rig = try Rig(work: work + "-projects", hosts: 4, extraMountArgs: "--allow-other")
            defer { rig.tearDown() }
            try ProjectsBench(rig: rig, count: instances, reproduce: reproduce("projects", "--instances \(instances)")).run()
        }
        if want.contains("dashboard") {
            let rig = try Rig(work: work + "-dashboard", hosts: 4)
            defer { rig.tearDown() }
            try DashboardBench(rig: rig, count: dashboardInstances,
                               reproduce: reproduce("dashboard", "--dashboard-instances \(dashboardInstances)")).run()
        }
        if want.contains("migration") {
            let dir = URL(fileURLWithPath: guest).standardizedFileURL.path
            try LiveMigrationBench(work: work + "-migration", guestDir: dir, rounds: migrationRounds,
                                   reproduce: reproduce("migration", "--migration-rounds \(migrationRounds) --guest '\(dir)'")).run()
        }
        if want.contains("volumes") {
            let dir = URL(fileURLWithPath: guest).standardizedFileURL.path
            try VolumeBench(work: work + "-volumes", guestDir: dir, cycles: volumeCycles,
                            reproduce: reproduce("volumes", "--volume-cycles \(volumeCycles) --guest '\(dir)'")).run()
        }
    }
}

/// Prints one result row.
func report(_ what: String, _ value: String, _ note: String = "") {
    print(what.padding(toLength: 58, withPad: " ", startingAt: 0) + value + (note.isEmpty ? "" : "   " + note))
    fflush(nil)   // each result as soon as it is measured, also when the output is a file
}

/// Monotonic seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Runs `body(0..<n)` on `n` threads at once (not `concurrentPerform`, which runs as
/// many at a time as there are cores); returns the wall time.
@discardableResult
func together(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) -> Double {
    let group = DispatchGroup()
    let t0 = now()
    for i in 0..<n {
        group.enter()
        Thread { body(i); group.leave() }.start()
    }
    group.wait()
    return now() - t0
}

/// Runs a shell command and returns its wall time in seconds (fails loudly). Uses
/// posix_spawn + waitpid: Foundation's `Process.waitUntilExit` notices an exit only at
/// its run loop's next wake-up, which quantised short timings to ~50 ms steps.
@discardableResult
func timed(_ script: String) throws -> Double {
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup(script), nil]
    defer { for a in argv { free(a) } }
    var pid: pid_t = 0
    let t0 = now()
    let rc = posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ)
    guard rc == 0 else { throw ValidationError("cannot run /bin/sh: errno \(rc)") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let elapsed = now() - t0
    guard status == 0 else { throw ValidationError("command failed (wait status \(status)): \(script)") }
    return elapsed
}

func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s.isEmpty ? 0 : s[s.count / 2] }
func percentile(_ xs: [Double], _ p: Double) -> Double {
    let s = xs.sorted(); return s.isEmpty ? 0 : s[min(s.count - 1, Int(Double(s.count) * p))]
}
