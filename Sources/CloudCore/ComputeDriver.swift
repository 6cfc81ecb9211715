/// Capacity a hypervisor reports (libvirt `virNodeGetInfo` and friends).
public struct HostCapacity: Sendable, Equatable {
    public var vcpus: Int
    public var ramMB: Int
    public var diskGB: Int
    /// `qemu`, `kvm` or `test`: the domain type this connection will use.
    public var hypervisorType: String
    /// e.g. `x86_64`.
    public var arch: String
    public init(vcpus: Int, ramMB: Int, diskGB: Int, hypervisorType: String, arch: String) {
        self.vcpus = vcpus; self.ramMB = ramMB; self.diskGB = diskGB
        self.hypervisorType = hypervisorType; self.arch = arch
    }
}

/// One disk of a domain (Nova's block device mapping as the libvirt driver renders it):
/// the instance's boot disk, an attached volume, a config drive.
public struct DiskSpec: Sendable, Equatable {
    /// A disk the guest writes (`device='disk'`) or a read-only optical drive (`cdrom`).
    public enum Kind: String, Sendable { case disk, cdrom }
    public var kind: Kind
    /// The image file on the host, or a block device (`/dev/...`: an LVM volume).
    public var path: String
    /// A block device rather than a file (`<disk type='block'>`).
    public var isBlockDevice: Bool { path.hasPrefix("/dev/") }
    /// `qcow2` or `raw`.
    public var format: String
    /// The guest device name: `vda`, `vdb` ... for virtio disks, `hdc`/`sda` for a cdrom.
    public var device: String
    public init(kind: Kind = .disk, path: String, format: String = "qcow2", device: String) {
        self.kind = kind; self.path = path; self.format = format; self.device = device
    }
}

/// One NIC of a domain (nova-network's VIF as handed to the virt driver).
public struct NICSpec: Sendable, Equatable {
    /// Guest MAC (Nova's `fa:16:3e` prefix).
    public var mac: String
    /// The fixed IP the NIC carries (informational: the guest learns it by DHCP or the
    /// kernel command line).
    public var ip: String?
    /// The Linux bridge the NIC is plugged into (nova-network's `bridge`); nil: user-mode
    /// networking, nothing on the host is touched.
    public var bridge: String?
    /// The host-side tap device name (`<target dev=...>`), so firewall rules can name it.
    public var interfaceName: String?
    /// User-mode networking laid out as the cloud network (nil: QEMU's defaults).
    public var userNet: UserNetSpec?
    public init(mac: String, ip: String? = nil, bridge: String? = nil, interfaceName: String? = nil, userNet: UserNetSpec? = nil) {
        self.mac = mac; self.ip = ip; self.bridge = bridge; self.interfaceName = interfaceName; self.userNet = userNet
    }
}

/// A guest's private user-mode network (QEMU's slirp) when the cloud does not manage the
/// host's networks: the cloud network's range with QEMU's side at its gateway, so the
/// fixed IP the config drive gives the guest works there, and a loopback port forwarded
/// to the guest's port 22.
public struct UserNetSpec: Sendable, Equatable {
    /// `10.0.0.0/16`
    public var network: String
    /// QEMU's address on it (the network's gateway).
    public var host: String
    /// QEMU's DNS forwarder address.
    public var dns: String
    /// The guest's fixed IP (where the forwarded port goes).
    public var guest: String
    /// The loopback port forwarded to the guest's port 22, if any.
    public var sshPort: Int?
    public init(network: String, host: String, dns: String, guest: String, sshPort: Int?) {
        self.network = network; self.host = host; self.dns = dns; self.guest = guest; self.sshPort = sshPort
    }
}

/// Everything a driver needs to spawn one guest (Nova's instance + image_meta +
/// block_device_info + network_info as handed to `ComputeDriver.spawn`).
public struct DomainSpec: Sendable, Equatable {
    /// Libvirt domain name; cloudfs uses `cloudfs-<cloud id>-<instance uuid>`.
    public var domainName: String
    /// The instance uuid, also the libvirt domain uuid.
    public var uuid: String
    public var vcpus: Int
    public var ramMB: Int
    /// The disks in guest order: the boot disk first (a qcow2 overlay in the state
    /// directory), then attached volumes and a config drive.
    public var disks: [DiskSpec]
    /// The NICs in guest order.
    public var nics: [NICSpec]
    /// Direct kernel boot (Glance aki/ari): paths in the image store.
    public var kernelPath: String?
    public var initrdPath: String?
    public var cmdline: String?
    /// File that receives the serial console (`<serial type='file'>`).
    public var consolePath: String

    public init(domainName: String, uuid: String, vcpus: Int, ramMB: Int, disks: [DiskSpec], nics: [NICSpec] = [],
                kernelPath: String? = nil, initrdPath: String? = nil, cmdline: String? = nil, consolePath: String) {
        self.domainName = domainName; self.uuid = uuid; self.vcpus = vcpus; self.ramMB = ramMB
        self.disks = disks; self.nics = nics; self.kernelPath = kernelPath
        self.initrdPath = initrdPath; self.cmdline = cmdline; self.consolePath = consolePath
    }

    /// A domain with one boot disk at `vda` and at most one NIC (the common case).
    public init(domainName: String, uuid: String, vcpus: Int, ramMB: Int, diskPath: String,
                diskFormat: String = "qcow2", kernelPath: String? = nil, initrdPath: String? = nil,
                cmdline: String? = nil, mac: String? = nil, ip: String? = nil, consolePath: String) {
        self.init(domainName: domainName, uuid: uuid, vcpus: vcpus, ramMB: ramMB,
                  disks: [DiskSpec(path: diskPath, format: diskFormat, device: "vda")],
                  nics: mac.map { [NICSpec(mac: $0, ip: ip)] } ?? [],
                  kernelPath: kernelPath, initrdPath: initrdPath, cmdline: cmdline, consolePath: consolePath)
    }

    /// The boot disk (the first), if any.
    public var bootDisk: DiskSpec? { disks.first }
}

/// One domain as listed by the hypervisor.
public struct DomainSummary: Sendable, Equatable {
    public var uuid: String
    public var name: String
    public var power: PowerState
    public init(uuid: String, name: String, power: PowerState) { self.uuid = uuid; self.name = name; self.power = power }
}

/// A lifecycle operation on an existing domain (Nova's power_on, power_off, reboot,
/// pause, unpause, suspend, resume driver calls).
public enum DomainOperation: String, Sendable {
    /// Start a defined domain; restores a managed save (Nova's power_on / resume).
    case start
    /// Ask the guest to shut down (ACPI).
    case shutdown
    /// Hard power off, keeping the definition.
    case powerOff
    /// Pause the vCPUs (virDomainSuspend).
    case pause
    /// Resume paused vCPUs (virDomainResume).
    case unpause
    /// Save the guest's memory to disk and stop it (virDomainManagedSave).
    case managedSave
}

/// One open hypervisor connection: Nova's `ComputeDriver` contract (nova/virt/driver.py),
/// narrowed to what cloudfs uses. Implementations: `LibvirtCompute` (any libvirt URI).
/// Every method may be called from any thread.
public protocol ComputeConnection: AnyObject, Sendable, VolumeConnection, StoragePoolConnection, MigrationConnection {
    /// The libvirt URI this connection was opened with.
    var uri: String { get }
    /// Host capacity. Throws `EIO` when the hypervisor does not answer.
    func capacity() throws(CloudError) -> HostCapacity
    /// Renders the domain XML for `spec` without touching the hypervisor.
    func domainXML(for spec: DomainSpec) -> String
    /// Defines and starts the domain; returns the XML as libvirt now holds it.
    /// Not idempotent; on failure any partial domain is undefined before it throws
    /// (Nova: "any partial instance should be completely cleaned up").
    func spawn(_ spec: DomainSpec) throws(CloudError) -> String
    /// Destroys (hard power off) and undefines the domain. Idempotent: a missing domain
    /// is success (Nova: "destroy of a missing instance succeeds").
    func destroy(uuid: String) throws(CloudError)
    /// The domain's power state, or nil when no such domain exists.
    func powerState(uuid: String) throws(CloudError) -> PowerState?
    /// Runs one lifecycle operation. Throws `ENOENT` when the domain is missing, `EIO` with
    /// the hypervisor's message otherwise.
    func perform(_ op: DomainOperation, uuid: String) throws(CloudError)
    /// All domains on the host (running and defined).
    func listDomains() throws(CloudError) -> [DomainSummary]
    /// True when the connection still answers.
    func isAlive() -> Bool
    /// Calls `handler` with a domain's uuid (lowercased) whenever the hypervisor reports a
    /// lifecycle change of it (libvirt's domain lifecycle events: started, stopped, paused,
    /// crashed, undefined ...), on the driver's event thread. A connection that cannot
    /// deliver events does nothing; the engine's periodic sync covers it.
    func observeLifecycle(_ handler: @escaping @Sendable (String) -> Void)
    /// Opens the running domain's serial console (virDomainOpenConsole); `ENOTSUP` where
    /// the hypervisor has none, `EBUSY` when the domain is not running.
    func openConsole(uuid: String) throws(CloudError) -> any ConsoleStream
}

extension ComputeConnection {
    public func observeLifecycle(_ handler: @escaping @Sendable (String) -> Void) {}
    public func openConsole(uuid: String) throws(CloudError) -> any ConsoleStream {
        throw CloudError(.notSupported, "\(uri) has no serial consoles")
    }
}

/// How a live detach ended (libvirt's DeviceRemoved / DeviceRemovalFailed events, as
/// Nova's `_detach_with_retry` waits for them).
public enum DetachOutcome: Sendable, Equatable {
    /// The guest released the device.
    case removed
    /// The hypervisor reported that the guest refused or failed (the reason).
    case failed(String)
    /// No answer within the timeout: ask again.
    case timedOut
}

/// The block-device half of Nova's virt driver contract (attach_volume, detach_volume,
/// extend_volume, volume_snapshot_create), which Cinder volumes need.
public protocol VolumeConnection: Sendable {
    /// Adds a disk to the domain's persistent definition, and to the running guest too
    /// when `live` (libvirt's AFFECT_CONFIG | AFFECT_LIVE, as Nova's attach_volume).
    func attachDisk(_ disk: DiskSpec, uuid: String, live: Bool) throws(CloudError)
    /// Removes the disk at `device` from the persistent definition (a missing one is
    /// success): the first half of Nova's detach.
    func detachDiskPersistent(device: String, uuid: String) throws(CloudError)
    /// Asks the running guest to release `device` and waits up to `timeout` seconds for
    /// libvirt's DeviceRemoved (or DeviceRemovalFailed) event. A device already gone is
    /// `.removed`.
    func detachDiskLive(device: String, uuid: String, timeout: Double) throws(CloudError) -> DetachOutcome
    /// Grows a running guest's disk to `bytes` (virDomainBlockResize), which also resizes
    /// the image underneath: the guest sees the new size (Nova's extend_volume).
    func resizeDisk(device: String, uuid: String, bytes: Int64) throws(CloudError)
    /// The domain's disks, target device → source path, from its live definition (or the
    /// persistent one when `persistent`); empty when the domain is missing.
    func disks(uuid: String, persistent: Bool) throws(CloudError) -> [String: String]
    /// The domain's XML as libvirt holds it now (its persistent definition when
    /// `persistent`); nil when the domain is missing.
    func currentXML(uuid: String, persistent: Bool) throws(CloudError) -> String?
    /// A point-in-time copy of a running guest's disk into a new qcow2 file at `path`
    /// (libvirt's push-mode backup job), waiting until it is complete.
    func copyDisk(device: String, uuid: String, to path: String, timeout: Double) throws(CloudError)
}

/// Opens connections by URI. Only the executable names the concrete driver.
public protocol ComputeDriver: Sendable {
    /// Opens a connection. Throws `EIO` with libvirt's message when it cannot.
    func connect(uri: String) throws(CloudError) -> any ComputeConnection
}
