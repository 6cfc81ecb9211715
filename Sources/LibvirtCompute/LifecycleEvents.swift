import CLibvirt
import CloudCore
import Foundation

/// libvirt's domain lifecycle events (VIR_DOMAIN_EVENT_ID_LIFECYCLE), delivered by the
/// event loop thread: Nova's `LibvirtDriver._handle_events`, reduced to "this domain
/// changed" so the engine re-reads its power state.
final class LifecycleObserver: @unchecked Sendable {
    // @unchecked: immutable after init; the handler itself is Sendable.
    let handler: @Sendable (String) -> Void
    init(_ handler: @escaping @Sendable (String) -> Void) { self.handler = handler }
}

/// The C callback: libvirt's lifecycle signature, called with the observer as `opaque`.
private let lifecycleCallback: @convention(c) (virConnectPtr?, virDomainPtr?, Int32, Int32, UnsafeMutableRawPointer?) -> Int32 = {
    _, dom, _, _, opaque in
    guard let dom, let opaque else { return 0 }
    var buf = [CChar](repeating: 0, count: Int(VIR_UUID_STRING_BUFLEN))
    guard virDomainGetUUIDString(dom, &buf) == 0 else { return 0 }
    let uuid = String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self).lowercased()
    Unmanaged<LifecycleObserver>.fromOpaque(opaque).takeUnretainedValue().handler(uuid)
    return 0
}

/// Releases the observer when libvirt drops the callback (at deregistration or close).
private let releaseObserver: @convention(c) (UnsafeMutableRawPointer?) -> Void = { opaque in
    guard let opaque else { return }
    Unmanaged<LifecycleObserver>.fromOpaque(opaque).release()
}

extension LibvirtConnection {
    public func observeLifecycle(_ handler: @escaping @Sendable (String) -> Void) {
        let opaque = Unmanaged.passRetained(LifecycleObserver(handler)).toOpaque()
        let generic = unsafeBitCast(lifecycleCallback, to: virConnectDomainEventGenericCallback.self)
        let id = virConnectDomainEventRegisterAny(rawHandle, nil, Int32(VIR_DOMAIN_EVENT_ID_LIFECYCLE.rawValue),
                                                  generic, opaque, releaseObserver)
        if id < 0 {
            // No events on this connection (the periodic sync still covers it).
            Unmanaged<LifecycleObserver>.fromOpaque(opaque).release()
            virResetLastError()
        }
    }
}
