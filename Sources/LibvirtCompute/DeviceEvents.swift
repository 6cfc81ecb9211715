import CLibvirt
import CloudCore
import Foundation
import Synchronization

/// libvirt's DeviceRemoved and DeviceRemovalFailed events (VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED
/// / _REMOVAL_FAILED), which Nova's `_detach_with_retry` waits for after asking a guest to
/// release a device. One hub per connection, registered on the first wait; a waiter is
/// registered before the unplug request goes out, so an event that comes at once is kept.
final class DeviceEventHub: @unchecked Sendable {
    // @unchecked: `registered` and `outcomes` are guarded by `condition`.
    private let condition = NSCondition()
    private var registered = false
    /// "uuid/alias" → what happened, for the keys someone waits for.
    private var outcomes: [String: DetachOutcome?] = [:]

    static func key(_ uuid: String, _ alias: String) -> String { uuid.lowercased() + "/" + alias }

    /// Registers the callbacks on `handle` once; false when the connection has no events.
    func ensureRegistered(_ handle: OpaquePointer) -> Bool {
        condition.lock(); defer { condition.unlock() }
        if registered { return true }
        let opaque = Unmanaged.passUnretained(self).toOpaque()
        let removed = unsafeBitCast(deviceRemovedCallback, to: virConnectDomainEventGenericCallback.self)
        let failed = unsafeBitCast(deviceRemovalFailedCallback, to: virConnectDomainEventGenericCallback.self)
        let a = virConnectDomainEventRegisterAny(handle, nil, Int32(VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED.rawValue), removed, opaque, nil)
        let b = virConnectDomainEventRegisterAny(handle, nil, Int32(VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED.rawValue), failed, opaque, nil)
        if a < 0 || b < 0 { virResetLastError() }
        registered = a >= 0
        return registered
    }

    /// Starts listening for `key` (before the request that may trigger it).
    func expect(_ key: String) {
        condition.lock(); outcomes[key] = .some(nil); condition.unlock()
    }

    /// Waits until `deadline` for the outcome of `key`, or until `check` says the device
    /// is gone (drivers without events, or an event missed); forgets the key.
    func wait(_ key: String, until deadline: Date, check: () -> Bool) -> DetachOutcome {
        defer { condition.lock(); outcomes[key] = nil; condition.unlock() }
        while true {
            condition.lock()
            if case .some(.some(let outcome)) = outcomes[key] { condition.unlock(); return outcome }
            let now = Date()
            if now >= deadline { condition.unlock(); return check() ? .removed : .timedOut }
            _ = condition.wait(until: min(deadline, now.addingTimeInterval(0.2)))
            condition.unlock()
            if check() { return .removed }
        }
    }

    fileprivate func deliver(_ uuid: String, _ alias: String, _ outcome: DetachOutcome) {
        condition.lock(); defer { condition.unlock() }
        let k = Self.key(uuid, alias)
        guard outcomes[k] != nil else { return }
        outcomes[k] = .some(outcome)
        condition.broadcast()
    }

    fileprivate static func from(_ opaque: UnsafeMutableRawPointer) -> DeviceEventHub {
        Unmanaged<DeviceEventHub>.fromOpaque(opaque).takeUnretainedValue()
    }
}

private func domainUUID(_ dom: virDomainPtr) -> String? {
    var buf = [CChar](repeating: 0, count: Int(VIR_UUID_STRING_BUFLEN))
    guard virDomainGetUUIDString(dom, &buf) == 0 else { return nil }
    return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

private let deviceRemovedCallback: @convention(c) (virConnectPtr?, virDomainPtr?, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
    _, dom, alias, opaque in
    guard let dom, let alias, let opaque, let uuid = domainUUID(dom) else { return }
    DeviceEventHub.from(opaque).deliver(uuid, String(cString: alias), .removed)
}

private let deviceRemovalFailedCallback: @convention(c) (virConnectPtr?, virDomainPtr?, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
    _, dom, alias, opaque in
    guard let dom, let alias, let opaque, let uuid = domainUUID(dom) else { return }
    DeviceEventHub.from(opaque).deliver(uuid, String(cString: alias), .failed("the guest did not release \(String(cString: alias)) (DeviceRemovalFailed)"))
}
