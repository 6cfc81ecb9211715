#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CloudCore

/// The one place ImageStore calls the OS for file I/O (after swift-nio's `syscall` helper):
/// errno is read immediately after a failure, EINTR is retried, short transfers are
/// continued, and failures become `CloudError` with the path or operation in the reason.
enum SystemCall {
    /// Opens `path` read-write, creating it exclusively (`O_CREAT|O_EXCL`) with `mode`.
    /// Throws `EEXIST` when it exists, `EIO` otherwise.
    static func createExclusive(_ path: String, mode: mode_t = 0o644) throws(CloudError) -> Int32 {
        while true {
            let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            let err = Errno.current
            if err == .interrupted { continue }
            if err == .exists { throw CloudError(.exists, "\(path) already exists") }
            throw CloudError(.io, "cannot create \(path): \(message(err))")
        }
    }

    /// Writes `bytes` as the whole content of `path` (created, or truncated), without the
    /// `fsync` Foundation's `Data.write` adds: for small files the caller can make again
    /// (an overlay's header, which a resumed build writes anew).
    static func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(CloudError) {
        var fd: Int32
        repeat { fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode) } while fd < 0 && Errno.current == .interrupted
        guard fd >= 0 else { throw CloudError(.io, "cannot create \(path): \(message(Errno.current))") }
        defer { close(fd) }
        let failure = bytes.withUnsafeBytes { b -> CloudError? in
            do throws(CloudError) { try pwriteAll(fd, b, at: 0); return nil } catch { return error }
        }
        if let failure { throw failure }
    }

    /// Opens `path` read-only. Throws `ENOENT` when missing, `EIO` otherwise.
    static func openReadOnly(_ path: String) throws(CloudError) -> Int32 {
        while true {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd >= 0 { return fd }
            let err = Errno.current
            if err == .interrupted { continue }
            if err == .noEntry { throw CloudError(.noEntry, "\(path) does not exist") }
            throw CloudError(.io, "cannot open \(path): \(message(err))")
        }
    }

    /// Writes all of `bytes` at `offset`. `ENOSPC` and `EFBIG` keep their errno; others are `EIO`.
    static func pwriteAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(CloudError) {
        guard var base = bytes.baseAddress else { return }
        var remaining = bytes.count
        var position = off_t(offset)
        while remaining > 0 {
            let n = pwrite(fd, base, remaining, position)
            if n < 0 {
                let err = Errno.current
                if err == .interrupted { continue }
                throw mapped(err, "write of \(remaining) bytes at offset \(position)")
            }
            base += n
            remaining -= n
            position += off_t(n)
        }
    }

    /// Reads up to `buffer.count` bytes at `offset`, stopping early only at end of file.
    /// Returns the number of bytes read.
    static func preadFull(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(CloudError) -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        var done = 0
        while done < buffer.count {
            let n = pread(fd, base + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                let err = Errno.current
                if err == .interrupted { continue }
                throw mapped(err, "read at offset \(offset + Int64(done))")
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Calls `body` with the file's bytes [offset, offset + count) mapped read-only
    /// (`mmap`, prefaulted): the page cache itself, no copy. `EIO` when it cannot be mapped.
    static func withMapped<T>(_ fd: Int32, at offset: Int64, count: Int,
                              _ body: (UnsafeRawBufferPointer) -> T) throws(CloudError) -> T {
        let page = Int64(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset - offset % page
        let length = count + Int(offset - start)
        guard let base = mmap(nil, length, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, off_t(start)), base != MAP_FAILED else {
            throw mapped(Errno.current, "map \(count) bytes at offset \(offset)")
        }
        defer { munmap(base, length) }
        return body(UnsafeRawBufferPointer(start: base + Int(offset - start), count: count))
    }

    /// Sets the file's size (`ftruncate`).
    static func truncate(_ fd: Int32, to size: Int64) throws(CloudError) {
        guard size >= 0 else { throw CloudError(.invalid, "negative size \(size)") }
        while ftruncate(fd, off_t(size)) != 0 {
            let err = Errno.current
            if err == .interrupted { continue }
            throw mapped(err, "truncate to \(size) bytes")
        }
    }

    /// The size of the open file (`fstat`).
    static func fileSize(_ fd: Int32) throws(CloudError) -> Int64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw mapped(Errno.current, "fstat") }
        return Int64(st.st_size)
    }

    /// The size of the file at `path` (`stat`); `ENOENT` when missing.
    static func fileSize(path: String) throws(CloudError) -> Int64 {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let err = Errno.current
            if err == .noEntry { throw CloudError(.noEntry, "\(path) does not exist") }
            throw CloudError(.io, "cannot stat \(path): \(message(err))")
        }
        return Int64(st.st_size)
    }

    /// Flushes the file's data and metadata to disk (`fsync`).
    static func fsync(_ fd: Int32) throws(CloudError) {
        #if canImport(Glibc)
        let rc = Glibc.fsync(fd)
        #else
        let rc = Darwin.fsync(fd)
        #endif
        if rc != 0 { throw mapped(Errno.current, "fsync") }
    }

    /// Starts writeback of `[offset, offset+count)` without waiting for it, so a later
    /// `fsync` has little left to write: `posix_fadvise(POSIX_FADV_DONTNEED)` on Linux
    /// starts writing the range's dirty pages (and drops the clean ones: the bytes were
    /// read already). Best effort.
    static func startWriteback(_ fd: Int32, at offset: Int64, count: Int) {
        #if canImport(Glibc)
        _ = posix_fadvise(fd, off_t(offset), off_t(count), POSIX_FADV_DONTNEED)
        #endif
    }

    /// Closes a descriptor. Not retried on EINTR: on Linux the descriptor is gone either way.
    static func close(_ fd: Int32) {
        #if canImport(Glibc)
        _ = Glibc.close(fd)
        #else
        _ = Darwin.close(fd)
        #endif
    }

    /// Removes `path`, ignoring a missing file.
    static func unlinkIfPresent(_ path: String) {
        _ = unlink(path)
    }

    /// `strerror` text for an errno.
    static func message(_ err: Errno) -> String {
        String(cString: strerror(err.rawValue))
    }

    /// Keeps the errnos a writer can act on (`ENOSPC`, `EFBIG`, `EDQUOT`); the rest become `EIO`.
    static func mapped(_ err: Errno, _ what: String) -> CloudError {
        let kept: Errno = switch err {
        case .noSpace, .tooBig, .quota, .badFile: err
        default: .io
        }
        return CloudError(kept, "\(what) failed: \(message(err))")
    }
}

