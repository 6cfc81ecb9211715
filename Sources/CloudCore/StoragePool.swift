/// The storage half of a compute host that shares no filesystem with the controller:
/// one libvirt storage pool on the host (a `dir` pool; libvirt's storage API over its
/// remote protocol), holding the Glance images cached there and each instance's disks,
/// as Nova's libvirt driver keeps `_base` images and instance disks on the compute node.
/// Every path it returns is a path on the host, never on the controller.
public protocol StoragePoolConnection: Sendable {
    /// Makes sure the pool `name` is defined, built, active and autostarted, with its
    /// target directory at `directory` when it has to be defined. Returns the target
    /// directory libvirt reports (a volume `V` of the pool lives at `DIR/V`).
    func ensurePool(_ name: String, directory: String) throws(CloudError) -> String
    /// The pool's volume names (after a refresh, so files made behind libvirt's back count).
    func volumeNames(pool: String) throws(CloudError) -> [String]
    /// Creates volume `volume` from the local file at `localPath` (virStorageVolCreateXML,
    /// then virStorageVolUpload streaming the file), returning its path on the host. A
    /// volume left half-written by a failure is deleted before it throws.
    func uploadVolume(pool: String, volume: String, from localPath: String, format: String) throws(CloudError) -> String
    /// Creates a qcow2 volume over `backingPath` (a path on the host) of `capacityBytes`
    /// (the backing file's size when nil): an instance's copy-on-write disk.
    func createOverlay(pool: String, volume: String, backingPath: String, backingFormat: String,
                       capacityBytes: Int64) throws(CloudError) -> String
    /// Deletes a volume; a missing volume (or pool) is success.
    func deleteVolume(pool: String, volume: String) throws(CloudError)
    /// Copies a volume's bytes into a new local file at `localPath` (virStorageVolDownload):
    /// how a disk leaves a remote host. `ENOENT` when there is no such volume.
    func downloadVolume(pool: String, volume: String, to localPath: String) throws(CloudError)
}

extension StoragePoolConnection {
    public func ensurePool(_ name: String, directory: String) throws(CloudError) -> String {
        throw CloudError(.notSupported, "this host has no storage pools")
    }
    public func volumeNames(pool: String) throws(CloudError) -> [String] { [] }
    public func uploadVolume(pool: String, volume: String, from localPath: String, format: String) throws(CloudError) -> String {
        throw CloudError(.notSupported, "this host has no storage pools")
    }
    public func createOverlay(pool: String, volume: String, backingPath: String, backingFormat: String,
                              capacityBytes: Int64) throws(CloudError) -> String {
        throw CloudError(.notSupported, "this host has no storage pools")
    }
    public func deleteVolume(pool: String, volume: String) throws(CloudError) {}
    public func downloadVolume(pool: String, volume: String, to localPath: String) throws(CloudError) {
        throw CloudError(.notSupported, "this host has no storage pools")
    }
}

/// Whether a libvirt URI reaches a host that sees the controller's files. The local
/// host (`qemu:///embed`, `qemu:///system`) and libvirt's test driver do; a URI with a
/// network transport (`qemu+tcp://`, `qemu+ssh://`, `qemu+tls://`) or a host name
/// (`qemu://node2/system`) reaches another machine, whose disks live in its own pool.
public enum HostLocality {
    /// True when `uri` names another machine.
    public static func isRemote(_ uri: String) -> Bool {
        guard let colon = uri.firstIndex(of: ":") else { return false }
        let scheme = uri[..<colon]
        if scheme.hasPrefix("test") { return false }
        if let plus = scheme.firstIndex(of: "+") {
            let transport = scheme[scheme.index(after: plus)...]
            if transport == "unix" || transport == "ext" { return false }
            return true
        }
        // qemu://HOST/system: a host part means the default remote transport (TLS).
        let rest = uri[uri.index(after: colon)...]
        guard rest.hasPrefix("//") else { return false }
        let authority = rest.dropFirst(2).prefix { $0 != "/" && $0 != "?" }
        let host = authority.split(separator: "@").last.map { $0.split(separator: ":").first ?? "" } ?? ""
        return !host.isEmpty && host != "localhost"
    }

    /// True when `uri` reaches its host over libvirt's TLS transport: `qemu+tls://`, or a
    /// host part with no transport (`qemu://node2/system`, whose default transport is TLS).
    public static func usesTLS(_ uri: String) -> Bool {
        guard let colon = uri.firstIndex(of: ":"), isRemote(uri) else { return false }
        let scheme = uri[..<colon]
        guard let plus = scheme.firstIndex(of: "+") else { return true }
        return scheme[scheme.index(after: plus)...] == "tls"
    }

    /// `uri` with `name=value` added to its query, unless the query names `name` already
    /// (the operator's own choice wins).
    public static func adding(_ name: String, _ value: String, to uri: String) -> String {
        let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
        if query.split(separator: "&").contains(where: { $0.split(separator: "=").first.map(String.init) == name }) { return uri }
        return uri + (uri.contains("?") ? "&" : "?") + name + "=" + value
    }
}
