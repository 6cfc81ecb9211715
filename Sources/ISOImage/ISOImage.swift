import CIsofs
import CloudCore
import Glibc
import Synchronization

/// ISO 9660 images with Rock Ridge and Joliet names, written in-process by libisofs (the
/// library behind xorriso): the boundary module for libisofs. Nova's config drive is such
/// an image; making it here instead of running genisoimage saves a process start and
/// about 20 ms a build.
public enum ISOImage {
    /// libisofs wants `iso_init()` once per process before any other call.
    private static let ready: Int32 = iso_init()

    /// One image is written at a time. libisofs keeps process-wide state (its message
    /// queue, stream serial numbers) without documenting concurrent writers, and builds on
    /// several worker threads crashed it once in 6,654 config drives (a refcount drop on
    /// a NULL node, in the 10,000-instance benchmark). An image takes under a millisecond.
    private static let writing = Mutex(())

    /// Writes an image labelled `volume` holding `files` (relative paths, directories made
    /// as needed) to `path`, which is created or truncated. Not synced: callers rename
    /// it into place or make it again.
    public static func write(_ files: [(path: String, bytes: [UInt8])], volume: String, publisher: String,
                             to path: String) throws(CloudError) {
        guard ready >= 0 else { throw CloudError.io("libisofs did not start: \(message(ready))") }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CloudError.io("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let paths = files.map { strdup($0.path) }
        defer { paths.forEach { free($0) } }
        let buffers = files.map { f -> UnsafeMutablePointer<UInt8> in
            let p = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, f.bytes.count))
            p.initialize(from: f.bytes, count: f.bytes.count)
            return p
        }
        defer { buffers.forEach { $0.deallocate() } }
        let sizes = files.map { $0.bytes.count }
        let rc = writing.withLock { _ in paths.map { UnsafePointer($0) }.withUnsafeBufferPointer { p in
            buffers.map { UnsafePointer($0) }.withUnsafeBufferPointer { d in
                sizes.withUnsafeBufferPointer { s in
                    cisofs_write(fd, volume, publisher, files.count, p.baseAddress, d.baseAddress, s.baseAddress)
                }
            }
        } }
        guard rc >= 0 else { throw CloudError.io("libisofs could not write \(path): \(message(rc))") }
    }

    private static func message(_ code: Int32) -> String {
        iso_error_to_msg(code).map { String(cString: $0) } ?? "error \(code)"
    }
}
