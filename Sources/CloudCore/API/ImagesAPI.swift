import Foundation

/// An image upload in progress (Glance's queued → saving → active), created by `cp` into
/// `/images`. The FUSE layer feeds it the WRITEs it receives and commits it on close.
public protocol ImageUpload: AnyObject, Sendable {
    /// Writes bytes at an offset straight into the image store, hashing as it goes.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(CloudError)
    /// Sets the file size (ftruncate / O_TRUNC).
    func truncate(to size: Int64) throws(CloudError)
    /// Bytes written so far (the file's size).
    var size: Int64 { get }
    /// Detects the format, inspects qcow2, and makes the image active. May be called again
    /// after further writes (the image goes back to saving in between). Throws `EINVAL`
    /// when the bytes are refused; the upload is then discarded.
    @discardableResult func commit() throws(CloudError) -> ImageInfo
    /// Discards the upload: no bytes, no row remain. Idempotent.
    func abort(reason: String)
    /// True once `commit` succeeded and no write happened since.
    var isCommitted: Bool { get }
}

/// Glance: `/images` (the bytes) and `/images.d` (their records and properties).
public protocol ImagesAPI: AnyObject, Sendable {
    /// The images `caller` may see, by name.
    func list(_ caller: Caller) -> [ImageInfo]
    func get(_ name: String, _ caller: Caller) -> ImageInfo?
    /// `cp` into `/images/NAME`: a new upload (Glance's queued image).
    func beginUpload(_ name: String, _ caller: Caller) throws(CloudError) -> any ImageUpload
    /// `rm /images/NAME`: `EBUSY` while an instance uses it.
    func delete(_ name: String, _ caller: Caller) throws(CloudError)
    /// `mv /images/A /images/B`.
    func rename(_ name: String, to newName: String, _ caller: Caller) throws(CloudError)
    /// Sets (or with nil removes) an image property (`kernel`, `ramdisk`, `cmdline`, ...).
    func setProperty(_ image: String, key: String, value: String?, _ caller: Caller) throws(CloudError)
    /// `images.d/NAME/visibility`: Glance's visibility (only an admin makes an image public).
    func setVisibility(_ image: String, _ visibility: ImageVisibility, _ caller: Caller) throws(CloudError)
    /// `images.d/NAME/shared_with`: the projects a `shared` image is shared with (Glance's
    /// image members), each an existing project.
    func share(_ image: String, with projects: [String], _ caller: Caller) throws(CloudError)
}
