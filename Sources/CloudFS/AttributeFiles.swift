import CloudCore
import Foundation
import FuseKit

/// Attribute files: one value per file, ending in "\n" (an empty value is an empty file).
/// Writable ones take the whole value in one write at offset 0, applied at write time, so
/// `echo x > file` reports the cloud's refusal as the write's error.
extension CloudFileSystem {
    /// The content of a synthetic file, nil when the object is gone. `console`, `wait`,
    /// `/events` and image bytes are served elsewhere.
    func content(of node: Node, _ ctx: Context) -> [UInt8]? {
        switch node {
        case .readme: return Text.value(ctx.api.readme)
        case .key(let id, let name, let dir, let key):
            guard let kd = Collections[id]?.keyDirectory(dir), let m = Collections[id]?.lookup(ctx, name) else { return nil }
            return Text.value(kd.entries(m.object)[key] ?? "")
        default:
            return field(of: node, ctx).map { f, m in f.read(m.object, ctx) }
        }
    }

    /// Whether a file takes writes of a value (`echo VALUE > file`), applied at write time.
    func isWritable(_ node: Node, _ ctx: Context) -> Bool {
        if case .key = node { return true }
        return writableField(node)?.write != nil
    }

    /// The field a value file node is, without looking its object up.
    func writableField(_ node: Node) -> Field? {
        switch node {
        case .member(let id, let name): return Collections[id]?.memberFile(name)
        case .field(let id, let name, let file): return Collections[id]?.field(file, member: name)
        default: return nil
        }
    }

    /// The value written to an attribute file: one trailing newline and surrounding
    /// whitespace removed.
    func value(of data: UnsafeRawBufferPointer) -> String {
        var s = String(decoding: data, as: UTF8.self)
        if s.hasSuffix("\n") { s.removeLast() }
        return s.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Applies a write to a writable attribute file through the cloud, by the field's
    /// `write`. Throws the cloud's refusal (already recorded by the cloud).
    func apply(_ node: Node, value: String, _ r: Request) throws(CloudError) {
        let w = WriteContext(api: api, caller: r.caller, path: node.path)
        switch node {
        case .key(let id, let name, let dir, let key):
            guard let c = Collections[id], let kd = c.keyDirectory(dir) else { throw refuse(.readOnly, "\(node.path) is read-only", node, r) }
            try kd.set(w, name, key, value)
            changed(c.notice, name)
        case .member(let id, let name), .field(let id, let name, _):
            guard let c = Collections[id], let write = writableField(node)?.write else {
                throw refuse(.readOnly, "\(node.path) is read-only", node, r)
            }
            try write(w, name, value)
            changed(c.notice, name)
        default:
            throw refuse(.readOnly, "\(node.path) is read-only", node, r)
        }
    }

    /// The longest value an attribute file takes. The kernel splits a longer write(2) into
    /// several WRITEs (at max_write or max_pages, never below 128 KiB), so refusing a piece
    /// this long keeps a split write from applying its first piece and failing afterwards.
    static let maxAttributeValue = 64 << 10

    /// WRITE to an attribute file: the whole value at offset 0, in one write; files of
    /// several lines (rules, dns) also take consecutive writes, each applying everything
    /// written so far through this descriptor (bash's printf writes line by line).
    func writeAttribute(_ h: AttributeHandle, offset: Int64, data: UnsafeRawBufferPointer,
                        _ r: Request) throws(CloudError) -> Int {
        // A write was made through this descriptor, refused or not: closing it must not
        // apply the truncation's empty value (a refused attach would otherwise detach).
        h.markWritten()
        guard offset == 0 || writableField(h.node)?.severalLines == true, let all = h.accumulate(data, at: offset) else {
            throw refuse(.invalid, "write the whole value at once, at offset 0 (got offset \(offset))", h.node, r)
        }
        guard data.count <= Self.maxAttributeValue, all.count <= Self.maxAttributeValue else {
            throw refuse(.invalid, "a value is at most \(Self.maxAttributeValue) bytes (got \(max(data.count, all.count)))", h.node, r)
        }
        if writableField(h.node)?.appliesAtClose == true {
            // Applied whole when the writer closes (flushAttribute): no prefix of a long
            // value ever takes effect.
            h.holdForClose()
            return data.count
        }
        let text = all.withUnsafeBytes { value(of: $0) }
        try apply(h.node, value: text, r)
        if h.created { pendingKeys.withLock { $0[h.node] = nil } }
        return data.count
    }

    /// FLUSH of an attribute file created empty (`touch properties/KEY`), or opened with
    /// O_TRUNC and closed unwritten (`: > instance`): the empty value. A shell's redirection
    /// opens the file, dup2s it onto stdout and closes the first descriptor (one FLUSH)
    /// before the command writes; the empty value applied then would detach a volume or a
    /// floating IP that `echo web1 > instance` is about to write. So a truncated file gets
    /// its empty value from the second FLUSH on (the shell closing stdout: `: > file`
    /// still answers with the errno), or at RELEASE when it saw only one.
    func flushAttribute(_ h: AttributeHandle, _ r: Request) throws(CloudError) {
        if let held = h.takeHeld() {
            let text = held.withUnsafeBytes { value(of: $0) }
            try apply(h.node, value: text, r)
            return
        }
        // A new file (`echo KEY > keypairs/me`, `echo v > metadata/k`) follows the same
        // rule: its content comes after the shell's first close, and a refused write
        // leaves no empty key behind.
        if h.truncated || h.created {
            guard h.countFlush() >= 2, !h.wasWritten else { return }
        } else {
            guard h.created, !h.wasWritten else { return }
        }
        h.markWritten()
        try apply(h.node, value: "", r)
        if h.created { pendingKeys.withLock { $0[h.node] = nil } }
    }

    /// RELEASE of a value file opened with O_TRUNC and closed unwritten after a single
    /// FLUSH (a program that opened it once): the empty value. A refusal here reaches
    /// /events and the object's fault, not the closing process.
    func releaseAttribute(_ h: AttributeHandle, _ r: Request) {
        guard h.truncated || h.created, !h.wasWritten else { return }
        h.markWritten()
        do throws(CloudError) { try apply(h.node, value: "", r) } catch {}
    }
}
