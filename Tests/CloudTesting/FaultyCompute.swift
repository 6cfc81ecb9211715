import CloudCore
import Foundation
import Synchronization

/// A fault-injecting compute driver (DESIGN: "FakeCompute for fault tests"): it forwards
/// to a real driver but fails chosen calls, to prove that failures release everything.
public final class FaultyDriver: ComputeDriver, Sendable {
    public enum Fault: Sendable {
        case none, spawn(String), destroy(String)
        /// Spawns fail only on the host with this URI.
        case spawnOn(uri: String, String)
        /// The host with this URI stops answering: connect and capacity fail, isAlive is false.
        case dead(uri: String)
        /// Spawns take this many seconds before they go on (a hung hypervisor call).
        case slowSpawn(Double)
        /// Live detaches are never answered (a guest that ignores the unplug request).
        case detachIgnored
        /// Live detaches are refused by the guest (DeviceRemovalFailed).
        case detachRefused
    }
    let inner: any ComputeDriver
    let fault: Mutex<Fault>
    /// Seconds every spawn and every destroy take before they go on (slow hypervisor calls).
    let delays = Mutex((spawn: 0.0, destroy: 0.0))
    /// While held, spawns wait for `release()` (a hung hypervisor call the test ends itself).
    let gate = Gate()
    /// Runs once, before the next listing of a host's domains answers.
    let listingHook = Mutex<(@Sendable () -> Void)?>(nil)
    public init(wrapping inner: any ComputeDriver, fault: Fault = .none) { self.inner = inner; self.fault = Mutex(fault) }
    public func setFault(_ f: Fault) { fault.withLock { $0 = f } }
    /// Makes every spawn and destroy take this long.
    public func setDelays(spawn: Double, destroy: Double) { delays.withLock { $0 = (spawn, destroy) } }
    /// From now on, spawns hang until `release()`.
    public func hold() { gate.close() }
    /// Lets every held spawn (and later ones) go on.
    public func release() { gate.open() }
    /// Runs `body` once, just before the next domain listing is made (something that
    /// happens while a sweep is between reading its instances and listing their domains).
    public func beforeNextListing(_ body: @escaping @Sendable () -> Void) { listingHook.withLock { $0 = body } }
    public func connect(uri: String) throws(CloudError) -> any ComputeConnection {
        if case .dead(let u) = current, u == uri { throw CloudError.io("cannot connect to \(uri): injected: host unreachable") }
        return FaultyConnection(inner: try inner.connect(uri: uri), driver: self)
    }
    var current: Fault { fault.withLock { $0 } }
}

final class FaultyConnection: ComputeConnection, Sendable {
    let inner: any ComputeConnection
    let driver: FaultyDriver
    init(inner: any ComputeConnection, driver: FaultyDriver) { self.inner = inner; self.driver = driver }
    var uri: String { inner.uri }
    var isDead: Bool { if case .dead(let u) = driver.current { u == inner.uri } else { false } }
    func capacity() throws(CloudError) -> HostCapacity {
        if isDead { throw CloudError.io("injected: host unreachable") }
        return try inner.capacity()
    }
    func domainXML(for spec: DomainSpec) -> String { inner.domainXML(for: spec) }
    func spawn(_ spec: DomainSpec) throws(CloudError) -> String {
        if case .spawn(let why) = driver.current { throw CloudError.io(why) }
        if case .spawnOn(let u, let why) = driver.current, u == inner.uri { throw CloudError.io(why) }
        if case .slowSpawn(let s) = driver.current { Thread.sleep(forTimeInterval: s) }
        let delay = driver.delays.withLock { $0.spawn }
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        driver.gate.pass()
        return try inner.spawn(spec)
    }
    func destroy(uuid: String) throws(CloudError) {
        if case .destroy(let why) = driver.current { throw CloudError.io(why) }
        let delay = driver.delays.withLock { $0.destroy }
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        try inner.destroy(uuid: uuid)
    }
    func powerState(uuid: String) throws(CloudError) -> PowerState? { try inner.powerState(uuid: uuid) }
    func listDomains() throws(CloudError) -> [DomainSummary] {
        driver.listingHook.withLock { h in defer { h = nil }; return h }?()
        return try inner.listDomains()
    }
    func perform(_ op: DomainOperation, uuid: String) throws(CloudError) { try inner.perform(op, uuid: uuid) }
    func isAlive() -> Bool { !isDead && inner.isAlive() }
    func attachDisk(_ disk: DiskSpec, uuid: String, live: Bool) throws(CloudError) { try inner.attachDisk(disk, uuid: uuid, live: live) }
    func detachDiskPersistent(device: String, uuid: String) throws(CloudError) {
        try inner.detachDiskPersistent(device: device, uuid: uuid)
    }
    func detachDiskLive(device: String, uuid: String, timeout: TimeInterval) throws(CloudError) -> DetachOutcome {
        switch driver.current {
        case .detachIgnored: Thread.sleep(forTimeInterval: timeout); return .timedOut
        case .detachRefused: return .failed("injected: the guest refused to release \(device)")
        default: return try inner.detachDiskLive(device: device, uuid: uuid, timeout: timeout)
        }
    }
    func resizeDisk(device: String, uuid: String, bytes: Int64) throws(CloudError) {
        try inner.resizeDisk(device: device, uuid: uuid, bytes: bytes)
    }
    func disks(uuid: String, persistent: Bool) throws(CloudError) -> [String: String] {
        try inner.disks(uuid: uuid, persistent: persistent)
    }
    func currentXML(uuid: String, persistent: Bool) throws(CloudError) -> String? {
        try inner.currentXML(uuid: uuid, persistent: persistent)
    }
    func copyDisk(device: String, uuid: String, to path: String, timeout: TimeInterval) throws(CloudError) {
        try inner.copyDisk(device: device, uuid: uuid, to: path, timeout: timeout)
    }
    func observeLifecycle(_ handler: @escaping @Sendable (String) -> Void) { inner.observeLifecycle(handler) }
    func openConsole(uuid: String) throws(CloudError) -> any ConsoleStream { try inner.openConsole(uuid: uuid) }
}

/// A gate threads wait at while it is closed.
final class Gate: Sendable {
    private let condition = NSCondition()
    private let closed = Mutex(false)
    func close() { closed.withLock { $0 = true } }
    func open() {
        condition.lock()
        closed.withLock { $0 = false }
        condition.broadcast()
        condition.unlock()
    }
    /// Returns at once while open; waits for `open()` while closed.
    func pass() {
        condition.lock()
        while closed.withLock({ $0 }) { condition.wait() }
        condition.unlock()
    }
}
