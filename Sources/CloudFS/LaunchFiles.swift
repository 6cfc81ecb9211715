import CloudCore
import Foundation
import FuseKit
import Synchronization

/// A launch file being copied into `/instances/NAME`: its bytes so far. The instance is
/// made, with every option the file names, when the file is closed after its content
/// was written (the first FLUSH after a WRITE: `cp` and a shell's `>` both end that way);
/// the cloud's refusal is the error of that close.
final class LaunchHandle: Sendable {
    let name: String
    let owner: UInt32
    let created = Date().timeIntervalSince1970
    private struct State { var bytes: [UInt8] = []; var written = false; var applied = false; var opens = 1 }
    private let state = Mutex(State())
    init(name: String, owner: UInt32) { self.name = name; self.owner = owner }

    var bytes: [UInt8] { state.withLock { $0.bytes } }
    var size: Int { state.withLock { $0.bytes.count } }

    /// Appends (or, at offset 0, restarts with) `data`; nil for a write elsewhere.
    func accept(_ data: UnsafeRawBufferPointer, at offset: Int64) -> Int? {
        state.withLock { s in
            if offset == 0 { s.bytes = [] }
            guard offset == Int64(s.bytes.count) else { return nil }
            s.bytes += data
            s.written = true
            return s.bytes.count
        }
    }

    /// The bytes to launch from, once: nil when nothing was written since, or already launched.
    func takeForLaunch() -> [UInt8]? {
        state.withLock { s in
            guard s.written, !s.applied else { return nil }
            s.applied = true
            return s.bytes
        }
    }
}

extension CloudFileSystem {
    /// The longest launch file: Nova's 64 KiB of user data plus the rest of the request.
    static let maxLaunchFile = 256 << 10

    /// CREATE in `/instances`: a launch file (`cp web1.json /instances/web1`).
    func createLaunch(_ name: String, in dir: Node, _ r: Request) throws(CloudError) -> (Entry, OpenReply) {
        try validate(name, kind: "instance", in: dir, r)
        let node = Node.launch(name)
        if api.instances.get(name, r.caller) != nil { throw refuse(.exists, "instance '\(name)' already exists", node, r) }
        let h = LaunchHandle(name: name, owner: r.caller.uid)
        let fresh = launches.withLock { l -> Bool in
            guard l[name] == nil else { return false }
            l[name] = h
            return true
        }
        guard fresh else { throw refuse(.busy, "a launch file for '\(name)' is being written", node, r) }
        let meta = Meta.file(0, .readWrite, time: h.created, uid: r.caller.uid)
        return (entry(node, meta, lookups: 1), OpenReply(handle: files.add(.launch(h)), directIO: true))
    }

    func writeLaunch(_ h: LaunchHandle, offset: Int64, data: UnsafeRawBufferPointer, _ r: Request) throws(CloudError) -> Int {
        guard offset + Int64(data.count) <= Int64(Self.maxLaunchFile) else {
            throw refuse(.tooBig, "a launch file is at most \(Self.maxLaunchFile) bytes", .launch(h.name), r)
        }
        guard h.accept(data, at: offset) != nil else {
            throw refuse(.invalid, "write a launch file from its start, in order (got offset \(offset))", .launch(h.name), r)
        }
        return data.count
    }

    /// The close after the content: parse it and make the instance. The launch file is
    /// gone either way; on a refusal nothing was made.
    func flushLaunch(_ h: LaunchHandle, _ r: Request) throws(CloudError) {
        guard let bytes = h.takeForLaunch() else { return }
        defer { endLaunch(h) }
        let w = WriteContext(api: api, caller: r.caller, path: Node.launch(h.name).path)
        let request = try w.parse { () throws(CloudError) in try LaunchRequest.parse(json: bytes, name: h.name) }
        _ = try api.instances.create(h.name, request, r.caller)
    }

    /// RELEASE: a file closed without a FLUSH after its content (it cannot be, from a
    /// process) or never written: nothing is made.
    func releaseLaunch(_ h: LaunchHandle, _ r: Request) {
        do throws(CloudError) { try flushLaunch(h, r) } catch {}
        endLaunch(h)
    }

    private func endLaunch(_ h: LaunchHandle) {
        let removed = launches.withLock { l -> Bool in
            guard l[h.name] === h else { return false }
            l[h.name] = nil
            return true
        }
        if removed { changed(.instance, h.name) }
    }
}
