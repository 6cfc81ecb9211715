// FuseKit: the C boundary for libfuse3's low-level API and the only importer of CFuse.
//
// A file system implements `FuseHandler` (one small method per FUSE operation, in the
// spirit of go-fuse's capability interfaces; every method has a default that answers
// `ENOSYS` or the harmless equivalent), and `FuseSession` mounts it and runs libfuse's
// multi-threaded loop. Handlers compute a result and return it; FuseKit replies exactly
// once. Only READ may be answered later (`ReadReply.deferred`), from any thread, through
// the `Request` it was given. Errors are `CloudError`s: FuseKit replies their `errno`
// (a typed `Errno`); no raw `Int32` errno crosses this module's boundary.
import CloudCore

/// The operations of a FUSE file system (`struct fuse_lowlevel_ops`), called on libfuse's
/// worker threads, several at a time: implementations must be thread-safe and must not
/// block on future work (hand off and defer instead).
public protocol FuseHandler: AnyObject, Sendable {
    /// FUSE_DESTROY: the session is ending (called once, after the loop stopped).
    func destroy()
    /// FUSE_LOOKUP: resolve `name` in directory `parent`; a successful reply counts one
    /// lookup of the returned inode (balanced later by `forget`).
    func lookup(_ request: Request, parent: Inode, name: String) throws(CloudError) -> Entry
    /// FUSE_FORGET / FUSE_BATCH_FORGET: the kernel dropped `lookups` references.
    func forget(_ inode: Inode, lookups: UInt64)
    /// FUSE_GETATTR (`stat`). `file` is set for `fstat` on an open file.
    func getattr(_ request: Request, inode: Inode, file: FileInfo?) throws(CloudError) -> AttributeReply
    /// FUSE_SETATTR (`chmod`, `truncate`, `utimes`, ...).
    func setattr(_ request: Request, inode: Inode, changes: AttributeChanges,
                 file: FileInfo?) throws(CloudError) -> AttributeReply
    /// FUSE_OPENDIR.
    func opendir(_ request: Request, inode: Inode, flags: OpenFlags) throws(CloudError) -> OpenReply
    /// FUSE_READDIR and FUSE_READDIRPLUS: add entries after `offset` until `add` returns
    /// false. With `buffer.isPlus`, every entry added (except `.` and `..`) counts one
    /// lookup of its inode, as LOOKUP does.
    func readdir(_ request: Request, inode: Inode, file: FileInfo, offset: Int64,
                 into buffer: inout DirectoryBuffer) throws(CloudError)
    /// FUSE_RELEASEDIR.
    func releasedir(_ request: Request, inode: Inode, file: FileInfo)
    /// FUSE_OPEN.
    func open(_ request: Request, inode: Inode, flags: OpenFlags) throws(CloudError) -> OpenReply
    /// FUSE_READ: `size` bytes at `offset`; may be deferred (`ReadReply.deferred`).
    func read(_ request: Request, inode: Inode, file: FileInfo, offset: Int64,
              size: Int) throws(CloudError) -> ReadReply
    /// FUSE_WRITE: returns the number of bytes written. `data` is libfuse's buffer, valid
    /// only during the call.
    func write(_ request: Request, inode: Inode, file: FileInfo, offset: Int64,
               data: UnsafeRawBufferPointer) throws(CloudError) -> Int
    /// FUSE_FLUSH: sent on every `close(2)` of a descriptor; its error is `close`'s error.
    func flush(_ request: Request, inode: Inode, file: FileInfo) throws(CloudError)
    /// FUSE_RELEASE: the last descriptor of an open file is gone (cannot fail).
    func release(_ request: Request, inode: Inode, file: FileInfo)
    /// FUSE_CREATE (`open` with `O_CREAT` of a new name): creates and opens in one step.
    func create(_ request: Request, parent: Inode, name: String, mode: UInt32,
                flags: OpenFlags) throws(CloudError) -> (Entry, OpenReply)
    /// FUSE_MKNOD.
    func mknod(_ request: Request, parent: Inode, name: String, mode: UInt32,
               device: UInt64) throws(CloudError) -> Entry
    /// FUSE_MKDIR.
    func mkdir(_ request: Request, parent: Inode, name: String, mode: UInt32) throws(CloudError) -> Entry
    /// FUSE_SYMLINK (`ln -s TARGET NAME`).
    func symlink(_ request: Request, target: String, parent: Inode, name: String) throws(CloudError) -> Entry
    /// FUSE_READLINK: the target of a symbolic link.
    func readlink(_ request: Request, inode: Inode) throws(CloudError) -> String
    /// FUSE_RMDIR.
    func rmdir(_ request: Request, parent: Inode, name: String) throws(CloudError)
    /// FUSE_UNLINK.
    func unlink(_ request: Request, parent: Inode, name: String) throws(CloudError)
    /// FUSE_RENAME / FUSE_RENAME2.
    func rename(_ request: Request, parent: Inode, name: String, newParent: Inode,
                newName: String, flags: RenameFlags) throws(CloudError)
    /// FUSE_GETXATTR: the value. FuseKit answers the size probe and `ERANGE` itself.
    func getxattr(_ request: Request, inode: Inode, name: String) throws(CloudError) -> [UInt8]
    /// FUSE_LISTXATTR: the names. FuseKit encodes them and answers the size probe.
    func listxattr(_ request: Request, inode: Inode) throws(CloudError) -> [String]
    /// FUSE_SETXATTR.
    func setxattr(_ request: Request, inode: Inode, name: String, value: UnsafeRawBufferPointer,
                  flags: Int32) throws(CloudError)
    /// FUSE_REMOVEXATTR.
    func removexattr(_ request: Request, inode: Inode, name: String) throws(CloudError)
    /// FUSE_POLL: current readiness. When `handle` is non-nil the kernel wants a wake-up:
    /// keep it and call `handle.notify()` once the file becomes ready.
    func poll(_ request: Request, inode: Inode, file: FileInfo,
              handle: PollHandle?) throws(CloudError) -> PollEvents
    /// FUSE_STATFS (`df`).
    func statfs(_ request: Request, inode: Inode) throws(CloudError) -> FileSystemStatistics
}

extension CloudError {
    static let notImplemented = CloudError(.notImplemented, "operation not implemented")
}

/// Defaults: what a file system without the capability answers.
extension FuseHandler {
    public func destroy() {}
    public func lookup(_ request: Request, parent: Inode, name: String) throws(CloudError) -> Entry {
        throw CloudError(.noEntry, "no such name")
    }
    public func forget(_ inode: Inode, lookups: UInt64) {}
    public func setattr(_ request: Request, inode: Inode, changes: AttributeChanges,
                        file: FileInfo?) throws(CloudError) -> AttributeReply {
        throw CloudError(.notPermitted, "attributes cannot be changed")
    }
    public func opendir(_ request: Request, inode: Inode, flags: OpenFlags) throws(CloudError) -> OpenReply {
        OpenReply()
    }
    public func readdir(_ request: Request, inode: Inode, file: FileInfo, offset: Int64,
                        into buffer: inout DirectoryBuffer) throws(CloudError) {
        throw .notImplemented
    }
    public func releasedir(_ request: Request, inode: Inode, file: FileInfo) {}
    public func open(_ request: Request, inode: Inode, flags: OpenFlags) throws(CloudError) -> OpenReply {
        OpenReply()
    }
    public func read(_ request: Request, inode: Inode, file: FileInfo, offset: Int64,
                     size: Int) throws(CloudError) -> ReadReply {
        throw .notImplemented
    }
    public func write(_ request: Request, inode: Inode, file: FileInfo, offset: Int64,
                      data: UnsafeRawBufferPointer) throws(CloudError) -> Int {
        throw CloudError(.readOnly, "read-only file")
    }
    public func flush(_ request: Request, inode: Inode, file: FileInfo) throws(CloudError) {}
    public func release(_ request: Request, inode: Inode, file: FileInfo) {}
    public func create(_ request: Request, parent: Inode, name: String, mode: UInt32,
                       flags: OpenFlags) throws(CloudError) -> (Entry, OpenReply) {
        throw .notImplemented
    }
    public func mknod(_ request: Request, parent: Inode, name: String, mode: UInt32,
                      device: UInt64) throws(CloudError) -> Entry {
        throw CloudError(.notPermitted, "mknod is not supported")
    }
    public func mkdir(_ request: Request, parent: Inode, name: String, mode: UInt32) throws(CloudError) -> Entry {
        throw CloudError(.notPermitted, "mkdir is not supported here")
    }
    public func rmdir(_ request: Request, parent: Inode, name: String) throws(CloudError) {
        throw CloudError(.notPermitted, "rmdir is not supported here")
    }
    public func symlink(_ request: Request, target: String, parent: Inode, name: String) throws(CloudError) -> Entry {
        throw CloudError(.notPermitted, "symbolic links cannot be made here")
    }
    public func readlink(_ request: Request, inode: Inode) throws(CloudError) -> String {
        throw CloudError(.invalid, "not a symbolic link")
    }
    public func unlink(_ request: Request, parent: Inode, name: String) throws(CloudError) {
        throw CloudError(.notPermitted, "unlink is not supported here")
    }
    public func rename(_ request: Request, parent: Inode, name: String, newParent: Inode,
                       newName: String, flags: RenameFlags) throws(CloudError) {
        throw CloudError(.invalid, "rename is not supported here")
    }
    public func getxattr(_ request: Request, inode: Inode, name: String) throws(CloudError) -> [UInt8] {
        throw CloudError(.notSupported, "no extended attributes")
    }
    public func listxattr(_ request: Request, inode: Inode) throws(CloudError) -> [String] { [] }
    public func setxattr(_ request: Request, inode: Inode, name: String, value: UnsafeRawBufferPointer,
                         flags: Int32) throws(CloudError) {
        throw CloudError(.notSupported, "extended attributes are read-only")
    }
    public func removexattr(_ request: Request, inode: Inode, name: String) throws(CloudError) {
        throw CloudError(.notSupported, "extended attributes are read-only")
    }
    public func poll(_ request: Request, inode: Inode, file: FileInfo,
                     handle: PollHandle?) throws(CloudError) -> PollEvents {
        [.readable, .writable]
    }
    public func statfs(_ request: Request, inode: Inode) throws(CloudError) -> FileSystemStatistics {
        FileSystemStatistics()
    }
}
