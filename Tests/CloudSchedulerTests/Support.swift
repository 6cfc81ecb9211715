import CloudCore
import CloudScheduler
import CloudTesting

/// A host snapshot with test-friendly defaults.
func snap(_ name: String, ram: Int = 4096, ramUsed: Int = 0, vcpus: Int = 4, vcpusUsed: Int = 0,
          disk: Int = 100, diskUsed: Int = 0, state: HostState = .up, zone: String = "nova",
          hv: String = "qemu", arch: String = "x86_64") -> HostSnapshot {
    HostSnapshot(name: name, state: state, vcpus: vcpus, ramMB: ram, diskGB: disk, vcpusUsed: vcpusUsed,
                 ramMBUsed: ramUsed, diskGBUsed: diskUsed, availabilityZone: zone, hypervisorType: hv, arch: arch)
}

/// A spec for `ram` MiB, `vcpus` and `disk` GiB.
func spec(ram: Int = 512, vcpus: Int = 1, disk: Int = 1) -> RequestSpec {
    RequestSpec(ResourceRequest(vcpus: vcpus, ramMB: ram, diskGB: disk))
}

/// A scheduler from config edits (they must be valid).
func scheduler(_ edit: (inout SchedulerConfig) -> Void) -> FilterScheduler {
    var c = SchedulerConfig()
    edit(&c)
    do { return try FilterScheduler(config: c) } catch { fatalError("bad test config: \(error)") }
}

/// The total weight of each host that passed, by name.
func weights(_ d: FilterScheduler.Decision) -> [String: Double] {
    Dictionary(uniqueKeysWithValues: d.weighed.map { ($0.name, $0.weight) })
}
