import CloudCore
import Crypto
import Dispatch
import Synchronization

/// The data path of one upload (Glance's image data upload, `PUT /v2/images/{id}/file`):
/// bytes go with `pwrite` straight into the store file, and a SHA-256 (Glance's
/// `os_hash_value`) follows them on a hasher queue of its own, reading back what was
/// written (from the page cache) on another core, so the write path never waits for the
/// hash (hashing was 60% of the daemon's time in `perf` when it ran inside the WRITE), and
/// starts the disk writeback of each hashed chunk, so the closing `fsync` is short.
///
/// `cp` may write a sparse file (it seeks over holes and ftruncates at the end), and FUSE
/// may deliver writes out of order or overwrite: a write at the written end extends it (a
/// hole before it reads back as zeros), and anything that changes bytes already written
/// (an earlier offset, a shrinking truncate, a failed write) marks the hash dirty, so
/// `finish` re-reads the file. Thread-safe: FUSE may call from several threads.
public final class ImageIngest: Sendable {
    /// The store file receiving the bytes.
    public let path: String

    /// `@unchecked`: `SHA256` is not declared Sendable (it is a copy-on-write box); it is
    /// only ever touched, copied and finalized inside the mutex.
    private struct State: ~Copyable, @unchecked Sendable {
        /// -1 once closed.
        var fd: Int32
        /// The SHA-256 of the file's bytes [0, hashedUpTo) (meaningless when `dirty`).
        var hasher = SHA256()
        var hashedUpTo: Int64 = 0
        /// While not dirty, [0, writtenUpTo) holds the written bytes (holes read as zeros)
        /// and every byte past it is zero (an extension by truncate).
        var writtenUpTo: Int64 = 0
        /// A hasher task is queued or running.
        var hashing = false
        /// Bytes before `hashedUpTo` changed after they were hashed: `finish` re-reads the file.
        var dirty = false
        /// The file's size: the furthest write end, or the last truncate.
        var size: Int64 = 0
        var unlinked = false
    }

    private let state: Mutex<State>
    /// Where the hash follows the writes.
    private let hashQueue = DispatchQueue(label: "cloudfs.image-hash")
    /// Held while the hasher reads a mapped range and while a truncate shrinks the file:
    /// a page cut off under a mapping would be SIGBUS, not an error.
    private let mapping = Mutex(())

    /// Creates `path` exclusively (`O_CREAT|O_EXCL`, mode 0644). Throws `EEXIST` when it
    /// exists, `EIO` for any other failure.
    public init(path: String) throws(CloudError) {
        self.path = path
        state = Mutex(State(fd: try SystemCall.createExclusive(path)))
    }

    deinit {
        state.withLock { s in
            if s.fd >= 0 { SystemCall.close(s.fd); s.fd = -1 }
        }
    }

    /// Writes `bytes` at `offset` into the store file and hashes them (a FUSE WRITE).
    /// Throws `EINVAL` for a negative offset, `EBADF` after `close`, `ENOSPC`/`EFBIG`/`EDQUOT`
    /// from the file system, `EIO` otherwise.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(CloudError) {
        guard offset >= 0 else { throw .invalid("negative write offset \(offset)") }
        guard !bytes.isEmpty else { return }
        let (end, overflow) = offset.addingReportingOverflow(Int64(bytes.count))
        guard !overflow else { throw CloudError(.tooBig, "write past the largest file offset") }
        let kick = try state.withLock { (s) throws(CloudError) -> Bool in
            let fd = try Self.open(s)
            do throws(CloudError) {
                try SystemCall.pwriteAll(fd, bytes, at: offset)
            } catch {
                // Some bytes may have landed unhashed: only a re-read can be trusted now.
                s.dirty = true
                s.size = max(s.size, (try? SystemCall.fileSize(fd)) ?? s.size)
                throw error
            }
            s.size = max(s.size, end)
            guard !s.dirty else { return false }
            guard offset >= s.writtenUpTo else {
                s.dirty = true
                return false
            }
            s.writtenUpTo = end
            guard !s.hashing else { return false }
            s.hashing = true
            return true
        }
        if kick { hashQueue.async { self.hashAhead() } }
    }

    /// The hasher task: hashes what was written since it last looked, straight from the
    /// page cache (mapped, not copied) and outside the lock, until it has caught up (or
    /// the hash went dirty, or closed). The file never shrinks under it: a shrinking
    /// truncate marks the hash dirty and `finish`/`close` wait for this task first.
    private func hashAhead() {
        while true {
            let job = state.withLock { s -> (fd: Int32, from: Int64, to: Int64, hasher: SHA256)? in
                guard !s.dirty, s.fd >= 0, s.hashedUpTo < s.writtenUpTo else {
                    s.hashing = false
                    return nil
                }
                return (s.fd, s.hashedUpTo, s.writtenUpTo, s.hasher)
            }
            guard let job else { return }
            let (fd, from, to) = (job.fd, job.from, job.to)
            var (offset, hasher) = (from, job.hasher)
            var failed = false
            while offset < to {
                let want = Int(min(to - offset, Int64(Self.mappedChunk)))
                let mapped = mapping.withLock { _ -> Bool in
                    // A shrink that got in first cut the range: stop, the hash is dirty.
                    do throws(CloudError) {
                        guard try SystemCall.fileSize(fd) >= offset + Int64(want) else { return false }
                        try SystemCall.withMapped(fd, at: offset, count: want) { hasher.update(bufferPointer: $0) }
                        // The disk writes what is hashed while the upload goes on: the
                        // `fsync` before the image is active then waits for the last
                        // chunks only, not the whole image.
                        SystemCall.startWriteback(fd, at: offset, count: want)
                        return true
                    } catch { return false }
                }
                guard mapped else { failed = true; break }
                offset += Int64(want)
            }
            let stop = state.withLock { s -> Bool in
                if failed { s.dirty = true }   // `finish` re-reads the whole file and says why
                guard !s.dirty, s.hashedUpTo == from else { s.hashing = false; return true }
                s.hasher = hasher
                s.hashedUpTo = to
                return false
            }
            if stop { return }
        }
    }

    /// Waits until no hasher task runs (the file descriptor is then the caller's alone).
    private func quiesce() { hashQueue.sync {} }

    /// Sets the file's size (`ftruncate`, `O_TRUNC`). Growing adds zeros, which are hashed
    /// lazily by `finish`; shrinking below the hashed end marks the hash dirty.
    public func truncate(to size: Int64) throws(CloudError) {
        try state.withLock { (s) throws(CloudError) in
            let fd = try Self.open(s)
            if size < s.writtenUpTo { s.dirty = true }
            try mapping.withLock { (_) throws(CloudError) in try SystemCall.truncate(fd, to: size) }
            s.size = size
        }
    }

    /// The file's size in bytes (what `stat` on the uploading file reports).
    public var size: Int64 {
        state.withLock { $0.size }
    }

    /// Returns the SHA-256 (lowercase hex) of the current content and the detected format
    /// (Glance's checksum and introspection at upload end) WITHOUT ending the upload: more
    /// writes may follow and `finish` may be called again. Throws the `FormatSniffer`
    /// refusal (`EINVAL`), `EBADF` after `close`, `EIO` when the file cannot be re-read.
    public func finish() throws(CloudError) -> (sha256: String, detected: DetectedImage) {
        quiesce()
        return try state.withLock { (s) throws(CloudError) -> (sha256: String, detected: DetectedImage) in
            let fd = try Self.open(s)
            if s.dirty {
                s.hasher = try Self.hashFile(fd, size: s.size)
                s.hashedUpTo = s.size
                s.writtenUpTo = s.size
                s.dirty = false
            } else if s.hashedUpTo < s.writtenUpTo {
                // What the hasher has not reached yet (writes after `quiesce`).
                s.hasher = try Self.hashFile(fd, from: s.hashedUpTo, to: s.writtenUpTo, continuing: s.hasher)
                s.hashedUpTo = s.writtenUpTo
            }
            // A copy, so the running state can keep growing with later writes.
            var final = s.hasher
            Self.hashZeros(&final, count: s.size - s.hashedUpTo)
            let sha256 = Self.hex(final.finalize())
            return (sha256, try FormatSniffer.detect(fd: fd, fileSize: s.size))
        }
    }

    /// Flushes the bytes to disk (`fsync`): call before the image becomes active so a host
    /// crash cannot leave an active image with missing bytes. Throws `EBADF` after `close`,
    /// `EIO` (or `ENOSPC`/`EDQUOT`) when the file system fails.
    public func sync() throws(CloudError) {
        try state.withLock { (s) throws(CloudError) in try SystemCall.fsync(try Self.open(s)) }
    }

    /// Closes the file descriptor and keeps the file (the image is now in the store). Idempotent.
    public func close() {
        quiesce()
        state.withLock { s in
            if s.fd >= 0 { SystemCall.close(s.fd); s.fd = -1 }
        }
    }

    /// Closes and unlinks the file (an interrupted or refused upload leaves no bytes). Idempotent.
    public func discard() {
        quiesce()
        state.withLock { s in
            if s.fd >= 0 { SystemCall.close(s.fd); s.fd = -1 }
            if !s.unlinked { SystemCall.unlinkIfPresent(path); s.unlinked = true }
        }
    }

    // MARK: - Helpers

    private static func open(_ s: borrowing State) throws(CloudError) -> Int32 {
        guard s.fd >= 0 else { throw CloudError(.badFile, "the upload is already closed") }
        return s.fd
    }

    private static let chunk = 1 << 20
    /// What the hasher maps at a time.
    private static let mappedChunk = 8 << 20
    /// Shared zeros for hashing holes.
    private static let zeros = [UInt8](repeating: 0, count: chunk)

    private static func hashZeros(_ hasher: inout SHA256, count: Int64) {
        guard count > 0 else { return }
        zeros.withUnsafeBytes { z in
            var remaining = count
            while remaining > 0 {
                let n = Int(min(remaining, Int64(chunk)))
                hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: z[0..<n]))
                remaining -= Int64(n)
            }
        }
    }

    /// Hashes the first `size` bytes of the file (the dirty path), 1 MiB per `pread`.
    private static func hashFile(_ fd: Int32, size: Int64) throws(CloudError) -> SHA256 {
        try hashFile(fd, from: 0, to: size, continuing: SHA256())
    }

    /// `hasher` continued with the file's bytes [from, size).
    private static func hashFile(_ fd: Int32, from: Int64, to size: Int64, continuing hasher: SHA256) throws(CloudError) -> SHA256 {
        var hasher = hasher
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { buffer.deallocate() }
        var offset = from
        while offset < size {
            let want = Int(min(size - offset, Int64(chunk)))
            let got = try SystemCall.preadFull(fd, UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]), at: offset)
            guard got == want else {
                throw CloudError(.io, "image file shrank during the upload: \(offset + Int64(got)) of \(size) bytes")
            }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<got]))
            offset += Int64(got)
        }
        return hasher
    }

    private static func hex(_ digest: SHA256.Digest) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
