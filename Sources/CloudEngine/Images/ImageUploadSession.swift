import CloudCore
import CloudStore
import Foundation
import ImageStore
import Synchronization

/// One `cp` into `/images`: Glance's queued → saving → active, with the bytes streamed by
/// `ImageIngest` into the image store. Refused or interrupted uploads leave no bytes and no row.
final class ImageUploadSession: ImageUpload, @unchecked Sendable {
    // @unchecked: `state` is a Mutex; the rest is immutable.
    private struct State {
        var record: ImageRecord
        var committed = false
        var finished = false   // aborted, or refused
        var saving = false
    }
    private let images: ImageService
    private let ingest: ImageIngest
    private let caller: Caller
    private let state: Mutex<State>
    private var core: EngineCore { images.core }

    init(images: ImageService, record: ImageRecord, ingest: ImageIngest, caller: Caller) {
        self.images = images; self.ingest = ingest; self.caller = caller
        state = Mutex(State(record: record))
    }

    var size: Int64 { ingest.size }
    var isCommitted: Bool { state.withLock { $0.committed } }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(CloudError) {
        let firstWrite = try state.withLock { s throws(CloudError) -> Bool in
            guard !s.finished else { throw CloudError(.badFile, "upload of '\(s.record.name)' was already discarded") }
            s.committed = false
            defer { s.saving = true }
            return !s.saving
        }
        if firstWrite {
            do throws(CloudError) { _ = try images.changed(id: recordID) { $0.status = ImageStatus.saving.rawValue } } catch {
                throw core.refuse(error, kind: "image", object: state.withLock { $0.record.name }, caller: caller)
            }
        }
        try ingest.write(bytes, at: offset)
    }

    func truncate(to size: Int64) throws(CloudError) {
        try state.withLock { s throws(CloudError) in
            guard !s.finished else { throw CloudError(.badFile, "upload was already discarded") }
            s.committed = false
        }
        try ingest.truncate(to: size)
    }

    private var recordID: String { state.withLock { $0.record.id } }

    @discardableResult
    func commit() throws(CloudError) -> ImageInfo {
        let name = state.withLock { $0.record.name }
        let started = Date()
        let result: (sha256: String, detected: DetectedImage)
        do { result = try ingest.finish() } catch {
            abort(reason: error.reason)
            throw core.refuse(error, kind: "image", object: name, caller: caller)
        }
        let size = ingest.size
        do throws(CloudError) { try ingest.sync() } catch {
            abort(reason: error.reason)
            throw core.refuse(error, kind: "image", object: name, caller: caller)
        }
        let now = Date().timeIntervalSince1970
        let info: ImageInfo?
        do throws(CloudError) {
            info = try images.changed(id: recordID) { r in
                r.status = ImageStatus.active.rawValue
                r.format = result.detected.format.rawValue
                r.size = size
                r.virtualSize = result.detected.virtualSize
                r.checksum = result.sha256
                r.activated = now
            }
        } catch {
            abort(reason: error.reason)
            throw core.refuse(error, kind: "image", object: name, caller: caller)
        }
        guard let info else { throw CloudError.notFound("image '\(name)' was removed during its upload") }
        state.withLock { $0.committed = true }
        core.events.append(kind: "image.active", object: name, [
            "format": result.detected.format.rawValue, "size": "\(size)",
            "virtual_size": "\(result.detected.virtualSize)", "sha256": result.sha256,
            "took_ms": "\(Int(Date().timeIntervalSince(started) * 1000))"])
        return info
    }

    func abort(reason: String) {
        let rec: ImageRecord? = state.withLock { s in
            if s.finished { return nil }
            s.finished = true
            return s.record
        }
        guard let rec else { return }
        ingest.discard()
        do throws(CloudError) { try images.removeRow(id: rec.id) } catch {
            // The bytes are gone; the queued row is purged at the next start (Recovery).
            core.recordFailure(error, kind: "image", object: rec.name, doing: "removing the row of a discarded upload")
        }
        core.events.append(kind: "image.killed", object: rec.name, ["reason": reason, "pid": "\(caller.pid)"])
    }

    /// Closes the file when the last descriptor goes; an uncommitted upload is discarded.
    deinit { if !isCommitted { abort(reason: "upload closed before it was complete") } else { ingest.close() } }
}
