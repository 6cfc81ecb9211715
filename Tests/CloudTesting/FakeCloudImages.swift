import CloudCore
import Foundation
import Synchronization

/// Glance in the fake: uploads write real bytes with pwrite into `root/images/ID`, and
/// commit hashes them (sha256), sniffs the format (qcow2 by magic; qcow2 with a backing
/// file is refused as unsafe) and makes the image active.
extension FakeCloud {
    public func images() -> [ImageInfo] { state.withLock { $0.images.values.sorted { $0.name < $1.name } } }
    public func image(_ name: String) -> ImageInfo? { state.withLock { $0.images[name] } }

    public func beginUpload(_ name: String, caller: Caller) throws(CloudError) -> any ImageUpload {
        try checkName(name, "image", caller)
        let id = UUID().uuidString.lowercased()
        let path = root + "/images/" + id
        let info = ImageInfo(name: name, id: id, status: .queued, format: .unknown, size: 0, virtualSize: 0,
                             checksum: "", created: Date(), minRamMB: 0, minDiskGB: 0, properties: [:],
                             ownerUID: caller.uid, path: path)
        let fresh = state.withLock { s -> Bool in
            if s.images[name] != nil { return false }
            s.images[name] = info
            return true
        }
        guard fresh else { throw refuse(.exists, "image \(name) exists", name, caller) }
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = Errno.current
            _ = state.withLock { $0.images.removeValue(forKey: name) }
            throw refuse(.io, "cannot store image bytes: \(e.name)", name, caller)
        }
        events.append(kind: "image.upload", object: name, ["id": id, "uid": String(caller.uid)])
        notify(.image, name)
        return FakeUpload(cloud: self, name: name, id: id, path: path, fd: fd)
    }

    public func deleteImage(_ name: String, caller: Caller) throws(CloudError) {
        let err: CloudError? = state.withLock { s in
            guard let i = s.images[name] else { return .notFound("no image \(name)") }
            if s.instances.values.contains(where: { $0.image == name }) { return .busy("image \(name) is in use") }
            if i.status != .active { return .busy("image \(name) is being uploaded") }
            s.images[name] = nil
            unlink(i.path)
            return nil
        }
        if let err { throw refuse(err.errno, err.reason, name, caller) }
        events.append(kind: "image.delete", object: name)
        notify(.image, name)
    }

    public func renameImage(_ name: String, to newName: String, caller: Caller) throws(CloudError) {
        try checkName(newName, "image", caller)
        let err: CloudError? = state.withLock { s in
            guard var i = s.images[name] else { return .notFound("no image \(name)") }
            if s.images[newName] != nil { return .exists("image \(newName) exists") }
            if i.status != .active { return .busy("image \(name) is being uploaded") }
            i.name = newName
            s.images[name] = nil
            s.images[newName] = i
            return nil
        }
        if let err { throw refuse(err.errno, err.reason, name, caller) }
        events.append(kind: "image.rename", object: name, ["to": newName])
        notify(.image, name)
        notify(.image, newName)
    }

    public func setImageProperty(_ image: String, key: String, value: String?, caller: Caller) throws(CloudError) {
        let err: CloudError? = state.withLock { s in
            guard var i = s.images[image] else { return .notFound("no image \(image)") }
            if key.isEmpty || key.utf8.count > 255 { return .invalid("bad property key") }
            if value == nil && i.properties[key] == nil { return .notFound("no property \(key)") }
            i.properties[key] = value
            s.images[image] = i
            return nil
        }
        if let err { throw refuse(err.errno, err.reason, image, caller) }
        events.append(kind: "image.property", object: image, [key: value ?? "(removed)"])
        notify(.image, image)
    }

    /// Called by uploads: updates the row if it still belongs to upload `id`.
    func updateImage(_ name: String, id: String, _ change: (inout ImageInfo) -> Void) -> ImageInfo? {
        let info = state.withLock { s -> ImageInfo? in
            guard var i = s.images[name], i.id == id else { return nil }
            change(&i)
            s.images[name] = i
            return i
        }
        if info != nil { notify(.image, name) }
        return info
    }

    func dropImage(_ name: String, id: String, reason: String) {
        let dropped = state.withLock { s -> Bool in
            guard let i = s.images[name], i.id == id else { return false }
            s.images[name] = nil
            return true
        }
        if dropped {
            events.append(kind: "image.upload_aborted", object: name, ["reason": reason])
            notify(.image, name)
        }
    }
}

/// One upload into the fake image store.
final class FakeUpload: ImageUpload, @unchecked Sendable {
    struct State { var size: Int64 = 0; var committed = false; var gone = false; var fd: Int32 }
    let cloud: FakeCloud
    let name: String
    let id: String
    let path: String
    let state: Mutex<State>

    init(cloud: FakeCloud, name: String, id: String, path: String, fd: Int32) {
        self.cloud = cloud; self.name = name; self.id = id; self.path = path
        state = Mutex(State(fd: fd))
    }

    var size: Int64 { state.withLock { $0.size } }
    var isCommitted: Bool { state.withLock { $0.committed } }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(CloudError) {
        let result = state.withLock { s -> (Int, Bool) in
            if s.gone { return (-1, false) }
            let n = pwrite(s.fd, bytes.baseAddress, bytes.count, off_t(offset))
            if n < 0 { return (-2, false) }
            let wasCommitted = s.committed
            s.committed = false
            s.size = max(s.size, offset + Int64(n))
            return (n, wasCommitted || s.size == Int64(n) + offset && offset == 0)
        }
        if result.0 == -1 { throw CloudError(.io, "upload of \(name) was aborted") }
        if result.0 == -2 { throw CloudError(.io, "cannot write image bytes") }
        if result.1 { _ = cloud.updateImage(name, id: id) { $0.status = .saving } }
        let sz = size
        _ = cloud.updateImage(name, id: id) { $0.size = sz }
    }

    func truncate(to size: Int64) throws(CloudError) {
        let ok = state.withLock { s -> Bool in
            guard !s.gone, ftruncate(s.fd, off_t(size)) == 0 else { return false }
            s.size = size
            s.committed = false
            return true
        }
        guard ok else { throw CloudError(.io, "cannot truncate upload of \(name)") }
        _ = cloud.updateImage(name, id: id) { $0.size = size; $0.status = size > 0 ? .saving : .queued }
    }

    @discardableResult
    func commit() throws(CloudError) -> ImageInfo {
        let (fd, gone) = state.withLock { ($0.fd, $0.gone) }
        if gone { throw CloudError(.io, "upload of \(name) was aborted") }
        var header = [UInt8](repeating: 0, count: 32)
        _ = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 32, 0) }
        var format = DiskFormat.raw
        var virtualSize = size
        if header[0..<4] == [0x51, 0x46, 0x49, 0xfb] {
            func be64(_ at: Int) -> Int64 { header[at..<at + 8].reduce(0) { $0 << 8 | Int64($1) } }
            if be64(8) != 0 {
                let e = CloudError(.invalid, "image \(name) is a qcow2 with a backing file: refused as unsafe")
                cloud.recordRefusal(e, object: name, caller: .system)
                abort(reason: e.reason)
                throw e
            }
            format = .qcow2
            virtualSize = be64(24)
        }
        let digest = FakeSHA256.hex(fd: fd)
        let sz = size
        guard let info = cloud.updateImage(name, id: id, {
            $0.status = .active; $0.format = format; $0.size = sz; $0.virtualSize = virtualSize; $0.checksum = digest
        }) else { throw CloudError(.io, "image \(name) vanished during upload") }
        state.withLock { $0.committed = true }
        cloud.events.append(kind: "image.active", object: name, ["size": String(sz), "format": format.rawValue])
        return info
    }

    func abort(reason: String) {
        let fd = state.withLock { s -> Int32 in
            if s.gone { return -1 }
            s.gone = true
            return s.fd
        }
        guard fd >= 0 else { return }
        close(fd)
        unlink(path)
        cloud.dropImage(name, id: id, reason: reason)
    }

    deinit { if !state.withLock({ $0.gone }) { close(state.withLock { $0.fd }) } }
}

/// SHA-256 (FIPS 180-4), enough for the fake's image checksums (CloudTesting depends on
/// CloudCore only, so no crypto library).
enum FakeSHA256 {
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]

    /// The hex digest of everything readable from `fd` (from offset 0).
    static func hex(fd: Int32) -> String {
        var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        var total: UInt64 = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var pending: [UInt8] = []
        var offset: off_t = 0
        while true {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if n <= 0 { break }
            offset += off_t(n)
            total += UInt64(n)
            pending.append(contentsOf: chunk[..<n])
            let whole = pending.count / 64 * 64
            pending.withUnsafeBufferPointer { p in
                var i = 0
                while i < whole { block(&h, p, i); i += 64 }
            }
            pending.removeFirst(whole)
        }
        pending.append(0x80)
        while pending.count % 64 != 56 { pending.append(0) }
        for s in stride(from: 56, through: 0, by: -8) { pending.append(UInt8(truncatingIfNeeded: (total * 8) >> UInt64(s))) }
        pending.withUnsafeBufferPointer { p in
            var i = 0
            while i < p.count { block(&h, p, i); i += 64 }
        }
        return h.map { String(format: "%08x", $0) }.joined()
    }

    private static func block(_ h: inout [UInt32], _ p: UnsafeBufferPointer<UInt8>, _ at: Int) {
        @inline(__always) func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
            k.withUnsafeBufferPointer { k in
                for t in 0..<16 {
                    let b = at + t * 4
                    w[t] = UInt32(p[b]) << 24 | UInt32(p[b + 1]) << 16 | UInt32(p[b + 2]) << 8 | UInt32(p[b + 3])
                }
                for t in 16..<64 {
                    let s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
                    let s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
                    w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
                }
                var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7]
                for t in 0..<64 {
                    let t1 = hh &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ ((e & f) ^ (~e & g)) &+ k[t] &+ w[t]
                    let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (a & c) ^ (b & c))
                    hh = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
                }
                h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
            }
        }
    }
}
