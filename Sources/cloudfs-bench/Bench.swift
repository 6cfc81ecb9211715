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

    func run() throws {
        let rig = try Rig(work: work, hosts: 4)
        defer { rig.tearDown() }
        print("cloudfs-bench  (\(ProcessInfo.processInfo.activeProcessorCount) cores, state and baseline on \(work))\n")
        SchedulerBench().run()
        try CopyBench(rig: rig, mib: imageMib).run()
        try LatencyBench(rig: rig, samples: samples).run()
        try ListingBench(rig: rig, count: instances).run()
    }
}

/// Prints one result row.
func report(_ what: String, _ value: String, _ note: String = "") {
    print(what.padding(toLength: 58, withPad: " ", startingAt: 0) + value + (note.isEmpty ? "" : "   " + note))
}

/// Monotonic seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Runs a shell command and returns its wall time in seconds (fails loudly).
@discardableResult
func timed(_ script: String) throws -> Double {
    let t0 = now()
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", script]
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw ValidationError("command failed (\(p.terminationStatus)): \(script)") }
    return now() - t0
}

func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s.isEmpty ? 0 : s[s.count / 2] }
func percentile(_ xs: [Double], _ p: Double) -> Double {
    let s = xs.sorted(); return s.isEmpty ? 0 : s[min(s.count - 1, Int(Double(s.count) * p))]
}
