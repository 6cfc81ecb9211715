import CLibvirt
import CloudCore
import Foundation

/// The hypervisor type new domains get on QEMU hosts (Nova's `[libvirt] virt_type`).
public enum VirtType: String, Sendable, CaseIterable {
    /// `kvm` when /dev/kvm can be opened read-write, otherwise `qemu`.
    case auto
    /// Hardware virtualization (`<domain type='kvm'>`).
    case kvm
    /// QEMU's software emulator, TCG (`<domain type='qemu'>`). Use it where KVM is absent or,
    /// as on nested-virtualization CI machines, where KVM guests hang.
    case qemu

    /// `kvm` or `qemu`: `auto` resolved against this machine's /dev/kvm.
    public var resolved: VirtType {
        switch self {
        case .kvm, .qemu: return self
        case .auto:
            let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
            if fd < 0 { return .qemu }
            close(fd)
            return .kvm
        }
    }
}

/// Opens libvirt connections: the compute driver (Nova's `LibvirtDriver`) behind the
/// `ComputeDriver` protocol. Any libvirt URI works: `qemu:///embed?root=DIR` (QEMU inside this
/// process, no daemon), `qemu:///system`, `qemu+ssh://host/system`, and `test:///default` or
/// `test:///ABS/PATH/host.xml` (libvirt's in-process fake hypervisor).
///
/// Every `connect` opens a new connection. Keep one per host: for `test:///PATH` URIs each
/// open is a separate fake host with its own domains (only `test:///default` is shared).
public struct LibvirtDriver: ComputeDriver {
    /// The domain type for QEMU hosts (test:/// hosts always use `test`).
    public var virtType: VirtType
    /// The state directory: its file system is the disk capacity reported for local QEMU
    /// hosts, and `embeddedURI` keeps the embedded driver's root under it.
    public var stateDir: String
    /// QEMU machine type for new domains (`pc` boots fastest under TCG; `q35` is the modern one).
    public var machineType: String
    /// For hosts reached over TLS (`HostLocality.usesTLS`): libvirt's `pkipath`, the
    /// directory with cacert.pem, clientcert.pem and clientkey.pem, added to a URI that
    /// names none, and what makes those files before the first such connection.
    public var tlsClient: (path: String, prepare: @Sendable () throws(CloudError) -> Void)?

    /// Configures the driver; opens nothing. `stateDir` is not created here.
    public init(virtType: VirtType = .auto, stateDir: String, machineType: String = "pc") {
        self.virtType = virtType
        self.stateDir = stateDir
        self.machineType = machineType
    }

    /// The default host of a cloudfs state directory: `qemu:///embed?root=STATE/libvirt`.
    /// Keep STATE short: libvirt puts UNIX sockets under the root (108-byte path limit).
    public var embeddedURI: String { EmbedRoot.uri(root: stateDir + "/libvirt") }

    /// Opens `uri` (libvirt `virConnectOpen`). Starts the process-wide event loop first, and
    /// for `qemu:///embed?root=DIR` writes DIR/etc/qemu.conf (`user`/`group` = root,
    /// `stdio_handler` = file) before. One embedded root per process (a libvirt limit).
    /// Throws `EIO` with libvirt's message when the connection cannot be opened.
    public func connect(uri: String) throws(CloudError) -> any ComputeConnection {
        try open(uri: uri)
    }

    /// `connect(uri:)` with the concrete type. Same effects and errors.
    public func open(uri: String) throws(CloudError) -> LibvirtConnection {
        try LibvirtEventLoop.shared.start()
        let embedRoot = EmbedRoot.root(of: uri)
        if let embedRoot { try EmbedRoot.prepare(root: embedRoot) }
        var target = uri
        if let tls = tlsClient, HostLocality.usesTLS(uri) {
            try tls.prepare()
            target = HostLocality.adding("pkipath", tls.path, to: uri)
        }
        let conn: OpaquePointer
        do {
            conn = try Libvirt.call("open libvirt connection \(uri)") { virConnectOpen(target) }
        } catch {
            let message = embedRoot == nil ? error.message : EmbedRoot.explain(error.message)
            throw .io("open libvirt connection \(uri): \(message)")
        }
        let isTest = uri.hasPrefix("test:")
        let domainType = isTest ? "test" : virtType.resolved.rawValue
        let flavor: DomainXML.Flavor = isTest ? .test : .qemu(type: domainType, machine: machineType)
        return LibvirtConnection(uri: uri, handle: conn, flavor: flavor, stateDir: stateDir)
    }
}
