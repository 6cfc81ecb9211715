import CloudCore
import CloudStore
import Foundation
import ImageStore
import Synchronization

/// Where an instance's disks live (Nova's libvirt image backend): for a host that sees
/// the controller's files (the local host, test:///), an overlay in the instance's state
/// directory over the image store's file; for a remote host (`HostLocality.isRemote`),
/// volumes in that host's own libvirt storage pool, over a copy of each Glance image
/// uploaded once and cached there (Nova's `_base` image cache), recorded in `host_image`
/// only once its upload finished.
final class HostDisks: Sendable {
    let core: EngineCore
    let hosts: any HostConnections
    let images: any ImageProvider
    /// Pool target directories, by host (read once per connection).
    private let poolDirs = Mutex<[String: String]>([:])
    /// Uploads in progress, `host/image`: a second build of the image waits for the first.
    private let uploading = NSCondition()
    private nonisolated(unsafe) var inProgress: Set<String> = []   // guarded by `uploading`

    init(core: EngineCore, hosts: any HostConnections, images: any ImageProvider) {
        self.core = core; self.hosts = hosts; self.images = images
    }

    /// This cloud's pool on every remote host (clouds sharing a host keep apart).
    var poolName: String { "cloudfs-\(core.setting(.cloudID) ?? "local")" }
    /// The directory the pool is defined with, on the host.
    var poolDirectory: String { "/var/lib/libvirt/images/" + poolName }

    /// True when `host` is registered with a URI naming another machine.
    func isRemote(_ host: String?) -> Bool {
        guard let host else { return false }
        return core.catalog.withLock { c in c.hosts[host]?.isRemote ?? false }
    }

    /// Every registered host whose URI names another machine.
    func remoteHosts() -> Set<String> {
        core.catalog.withLock { c in Set(c.hosts.values.filter(\.isRemote).map(\.record.name)) }
    }

    static func diskVolume(_ id: String) -> String { id + ".disk" }
    static func configVolume(_ id: String) -> String { id + ".config" }
    static func imageVolume(_ imageID: String) -> String { "image-" + imageID }

    /// The pool's directory on `host`, defining and starting the pool the first time this
    /// engine uses the host; then the image cache rows whose volume is no longer in the
    /// pool (a host rebuilt, a volume deleted by hand) are forgotten, so they upload again.
    func poolDir(_ host: String, _ conn: any ComputeConnection) throws(CloudError) -> String {
        if let dir = poolDirs.withLock({ $0[host] }) { return dir }
        let dir = try conn.ensurePool(poolName, directory: poolDirectory)
        let present = Set(try conn.volumeNames(pool: poolName))
        let recorded = core.catalog.withLock { $0.hostImages[host] ?? [:] }
        for id in recorded.keys where !present.contains(Self.imageVolume(id)) {
            try core.store.forgetHostImage(host: host, imageID: id)
            _ = core.catalog.withLock { $0.hostImages[host]?.removeValue(forKey: id) }
        }
        poolDirs.withLock { $0[host] = dir }
        return dir
    }

    /// The path on `host` of a Glance image, uploading it first when the host has no
    /// finished copy (a volume without a `host_image` row is a partial upload: redone).
    func imagePath(_ image: ImageInfo, on host: String, _ conn: any ComputeConnection) throws(CloudError) -> String {
        if let path = core.catalog.withLock({ $0.hostImages[host]?[image.id] }) { return path }
        let key = host + "/" + image.id
        uploading.lock()
        while inProgress.contains(key) { uploading.wait() }
        if let path = core.catalog.withLock({ $0.hostImages[host]?[image.id] }) { uploading.unlock(); return path }
        inProgress.insert(key)
        uploading.unlock()
        defer { uploading.lock(); inProgress.remove(key); uploading.broadcast(); uploading.unlock() }
        _ = try poolDir(host, conn)
        let t0 = Date()
        try conn.deleteVolume(pool: poolName, volume: Self.imageVolume(image.id))
        let path = try conn.uploadVolume(pool: poolName, volume: Self.imageVolume(image.id), from: image.path,
                                         format: image.format == .qcow2 ? "qcow2" : "raw")
        try core.store.recordHostImage(host: host, imageID: image.id, path: path)
        core.catalog.withLock { $0.hostImages[host, default: [:]][image.id] = path }
        core.events.append(kind: "image.cached", object: image.name,
                           ["host": host, "bytes": "\(image.size)", "took_ms": "\(Int(Date().timeIntervalSince(t0) * 1000))"])
        return path
    }

    /// Paths on a remote host for the domain spec: boot disk, config drive, and the
    /// kernel and ramdisk images (uploaded when missing).
    struct RemotePaths {
        var disk: String
        var configDrive: String
        var kernel: String?
        var ramdisk: String?
    }

    func remotePaths(_ r: InstanceRecord, on host: String) throws(CloudError) -> RemotePaths {
        let conn = try connection(host)
        let dir = try poolDir(host, conn)
        let (_, kernel, ramdisk) = try images.bootFiles(imageID: r.imageId)
        return RemotePaths(disk: dir + "/" + Self.diskVolume(r.id), configDrive: dir + "/" + Self.configVolume(r.id),
                           kernel: try kernel.map { k throws(CloudError) in try imagePath(k, on: host, conn) },
                           ramdisk: try ramdisk.map { k throws(CloudError) in try imagePath(k, on: host, conn) })
    }

    /// Makes the instance's disk on a remote host: its image (cached), a qcow2 overlay
    /// over it sized to the flavor, and the config drive made here and uploaded.
    func makeRemoteDisk(_ r: InstanceRecord, on host: String, configDrive: String?) throws(CloudError) {
        let conn = try connection(host)
        guard let img = images.image(id: r.imageId) else { throw CloudError.notFound("image \(r.imageName) no longer exists") }
        _ = try poolDir(host, conn)
        let base = try imagePath(img, on: host, conn)
        try removeRemote(r.id, on: host)
        let size = r.diskGb > 0 ? Int64(r.diskGb) << 30 : img.virtualSize
        _ = try conn.createOverlay(pool: poolName, volume: Self.diskVolume(r.id), backingPath: base,
                                   backingFormat: img.format == .qcow2 ? "qcow2" : "raw", capacityBytes: max(size, img.virtualSize))
        if let configDrive {
            _ = try conn.uploadVolume(pool: poolName, volume: Self.configVolume(r.id), from: configDrive, format: "raw")
        }
    }

    /// Deletes the instance's volumes on a remote host; missing ones are fine.
    func removeRemote(_ id: String, on host: String) throws(CloudError) {
        let conn = try connection(host)
        try conn.deleteVolume(pool: poolName, volume: Self.diskVolume(id))
        try conn.deleteVolume(pool: poolName, volume: Self.configVolume(id))
    }

    func connection(_ host: String) throws(CloudError) -> any ComputeConnection {
        guard let conn = hosts.connection(forHost: host) else { throw CloudError.io("host \(host) is not connected") }
        return conn
    }
}
