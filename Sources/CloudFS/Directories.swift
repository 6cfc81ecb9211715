import CloudCore
import FuseKit

/// Directory listings: a snapshot of the entries (with their attributes) taken at OPENDIR
/// and served by offset, as READDIRPLUS so `ls -l` needs no further round trip. Listings
/// contain only real objects (an instance being deleted is listed until it is gone).
extension CloudFileSystem {
    public func opendir(_ r: Request, inode: Inode, flags: OpenFlags) throws(CloudError) -> OpenReply {
        let ctx = context(r)
        let (node, meta) = try resolve(inode, ctx)
        guard meta.type == .directory else { throw CloudError(.notDirectory, "not a directory") }
        guard let kids = children(of: node, ctx) else { throw CloudError(.noEntry, "no such directory") }
        let parent = node.parentAndName.map { $0.0 } ?? .root
        let parentMeta = self.meta(of: parent, ctx) ?? meta
        var entries = [DirectoryEntry(name: ".", node: node, meta: meta),
                       DirectoryEntry(name: "..", node: parent, meta: parentMeta)]
        entries.reserveCapacity(kids.count + 2)
        for (name, child, m) in kids { entries.append(DirectoryEntry(name: name, node: child, meta: m)) }
        return OpenReply(handle: files.add(.directory(entries)))
    }

    public func readdir(_ r: Request, inode: Inode, file: FileInfo, offset: Int64,
                        into buffer: inout DirectoryBuffer) throws(CloudError) {
        guard case .directory(let entries) = files[file.handle] else {
            throw CloudError(.badFile, "not an open directory")
        }
        var i = Int(max(0, offset))
        while i < entries.count {
            let e = entries[i]
            let isDot = i < 2
            // `.` and `..` do not count as lookups; their inode numbers are informational, and
            // the kernel ignores their READDIRPLUS entries (timeouts included).
            let ino = isDot ? (table.existingInode(e.node) ?? inode)
                            : table.inode(for: e.node, identity: e.meta.identity)
            let entry = Entry(attributes: attributes(e.meta, ino), attributeTimeout: attrTimeout(e.node),
                              entryTimeout: entryTimeout(e.node, e.meta))
            guard buffer.add(name: e.name, entry: entry, nextOffset: Int64(i + 1)) else { break }
            if buffer.isPlus && !isDot { table.addLookup(ino) }
            i += 1
        }
    }

    public func releasedir(_ r: Request, inode: Inode, file: FileInfo) {
        _ = files.remove(file.handle)
    }
}
