import Foundation

/// How the engine is set up: where state lives and which hosts to use.
public struct EngineConfiguration: Sendable {
    /// State directory: `cloudfs.db`, `images/`, `instances/`, `libvirt/`.
    public var stateDir: String
    /// Hosts given on the command line (`--host`); empty means "the registered hosts, or
    /// the default local host when none is registered yet".
    public var hostURIs: [String]
    /// Build/delete jobs run concurrently (Nova's `max_concurrent_builds`, default 10).
    public var maxConcurrentJobs: Int
    /// Kernel command line used for direct kernel boot when the image has no `cmdline`.
    public var defaultCmdline: String
    /// Seconds between host health checks (Nova's report/service-down interval).
    public var hostCheckInterval: TimeInterval
    /// Seconds a guest gets to shut down cleanly on stop/soft reboot before a hard power
    /// off (Nova's `shutdown_timeout`).
    public var shutdownTimeout: TimeInterval = 30
    /// Apply the networks on this host (bridges, VLANs, dnsmasq, nftables, routes), as
    /// nova-network's `linux_net` does; guests' NICs then go on the networks' bridges.
    /// Off: nothing on the host is touched and guests get user-mode NICs.
    public var manageNetwork = false
    /// Seconds a store write waits for another connection's lock before it fails with
    /// `EIO` (SQLite's busy timeout).
    public var databaseBusyTimeout: Double = 10
    /// The uid the cloud runs as: like root, an admin of this cloud (a user's own cloud
    /// mounted without `--allow-other` is theirs).
    public var ownerUID: UInt32 = getuid()
    /// The uid of the local account NAME, for `mkdir /users/NAME` (the system's account
    /// database; tests give their own).
    public var accounts: @Sendable (String) -> UInt32? = UserService.localAccount
    /// The LVM volume group the `lvm` volume backend keeps thin volumes in (Cinder's
    /// `volume_group`, `cloudfs mount --volume-group VG`); nil: only the `file` backend.
    public var volumeGroup: String? = nil
    /// Host ports forwarded to guests' port 22 on loopback when networking is user-mode
    /// (`cloudfs mount --ssh-ports FIRST-LAST`), one per instance.
    public var sshPorts: ClosedRange<Int> = 22000...22999
    /// The port the metadata service listens on (Nova's `metadata_listen_port`); the
    /// managed networks redirect 169.254.169.254:80 to it. Nil: no metadata service.
    public var metadataPort: Int? = nil

    public init(stateDir: String, hostURIs: [String] = [], maxConcurrentJobs: Int = 10,
                defaultCmdline: String = "console=ttyS0", hostCheckInterval: TimeInterval = 5) {
        self.hostCheckInterval = hostCheckInterval
        self.stateDir = stateDir; self.hostURIs = hostURIs
        self.maxConcurrentJobs = maxConcurrentJobs; self.defaultCmdline = defaultCmdline
    }

    /// The default host: libvirt's embedded QEMU driver rooted in the state directory.
    public var localHostURI: String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "&=?#+")
        let root = (stateDir + "/libvirt").addingPercentEncoding(withAllowedCharacters: allowed) ?? stateDir + "/libvirt"
        return "qemu:///embed?root=\(root)"
    }
    public var databasePath: String { stateDir + "/cloudfs.db" }
    public var imagesDir: String { stateDir + "/images" }
    public var instancesDir: String { stateDir + "/instances" }
    public func instanceDir(_ id: String) -> String { instancesDir + "/" + id }
    /// The `file` volume backend's directory (qcow2 volumes and snapshots).
    public var volumesDir: String { stateDir + "/volumes" }
}
