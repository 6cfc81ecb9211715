/// An open serial console of a running guest (libvirt's console stream, what
/// `virsh console` uses): what the guest writes, as it comes, and keystrokes to it.
public protocol ConsoleStream: AnyObject, Sendable {
    /// Calls `deliver` once with the next bytes the guest wrote (at most `max`), at once
    /// when some are waiting; nil when the console ended (the guest stopped, or `close`).
    /// The token's `cancel` drops an unanswered read (its `deliver` is then never called).
    func read(max: Int, _ deliver: @escaping @Sendable ([UInt8]?) -> Void) -> WaitToken
    /// Sends keystrokes to the guest.
    func write(_ bytes: [UInt8]) throws(CloudError)
    /// Ends the session (idempotent); pending reads get nil.
    func close()
    /// The console ended (the guest stopped, or `close`).
    var hasEnded: Bool { get }
}

extension InstancesAPI {
    /// The default for clouds whose hosts have no console streams.
    public func openConsole(_ name: String, _ caller: Caller) throws(CloudError) -> any ConsoleStream {
        throw CloudError(.notSupported, "this cloud has no interactive consoles")
    }
}
