import CloudCore
import FuseKit
import Synchronization

/// Inode numbers for nodes (go-fuse's stable inodes): a node gets a number on its first
/// lookup and keeps it while the object it shows lives. The number is tied to the
/// object's identity (an instance's or image's uuid), so an object deleted and created
/// again under the same name gets a fresh number and the kernel never mistakes the new
/// directory for the old, dead one. Numbers are never reused. Entries the kernel has
/// forgotten (lookup count 0) are dropped once their object is gone.
final class NodeTable: Sendable {
    struct Slot: Sendable {
        var node: Node
        /// The identity of the object behind the node ("" when the node has none).
        var identity: String
        /// The kernel's lookup count (LOOKUP, CREATE, MKDIR, READDIRPLUS minus FORGET).
        var lookups: UInt64
        /// Still the object `identity` names (an empty identity on either side matches).
        func shows(_ identity: String) -> Bool {
            self.identity.isEmpty || identity.isEmpty || self.identity == identity
        }
    }

    private struct State {
        var byInode: [UInt64: Slot] = [Inode.root.rawValue: Slot(node: .root, identity: "", lookups: 1)]
        var byNode: [Node: UInt64] = [.root: Inode.root.rawValue]
        /// The current inodes of the keys (and their entries' files) of each key
        /// directory, so a change notice finds them without a walk over every node.
        var underKeyDirectory: [Node: Set<UInt64>] = [:]
        /// The current inodes of the fields of each member directory: a change notice
        /// invalidates the few the kernel was told about with one lookup, instead of one
        /// lookup of each of the member's 40 field nodes.
        var fieldsOfMember: [Node: Set<UInt64>] = [:]
        var next: UInt64 = 2

        /// Makes `ino` the current inode of `node` (replacing any other).
        mutating func setCurrent(_ node: Node, _ ino: UInt64) {
            if let old = byNode.updateValue(ino, forKey: node), old != ino { unindex(node, old) }
            if let kd = node.keyDirectory { underKeyDirectory[kd, default: []].insert(ino) }
            if let owner = node.fieldOwner { fieldsOfMember[owner, default: []].insert(ino) }
        }

        /// `node` no longer has `ino` as its current inode.
        mutating func removeCurrent(_ node: Node, _ ino: UInt64) {
            guard byNode[node] == ino else { return }
            byNode.removeValue(forKey: node)
            unindex(node, ino)
        }

        private mutating func unindex(_ node: Node, _ ino: UInt64) {
            if let kd = node.keyDirectory { Self.remove(ino, at: kd, from: &underKeyDirectory) }
            if let owner = node.fieldOwner { Self.remove(ino, at: owner, from: &fieldsOfMember) }
        }

        private static func remove(_ ino: UInt64, at key: Node, from index: inout [Node: Set<UInt64>]) {
            index[key]?.remove(ino)
            if index[key]?.isEmpty == true { index.removeValue(forKey: key) }
        }
    }

    private let state = Mutex(State())

    /// The inode for `node` showing the object `identity`, assigning one when needed, and
    /// counting `lookups` kernel references to it. An empty stored identity (a node made
    /// before the cloud assigned an id, e.g. by CREATE) adopts `identity`.
    func inode(for node: Node, identity: String, lookups: UInt64 = 0) -> Inode {
        state.withLock { s in
            if let ino = s.byNode[node], var slot = s.byInode[ino] {
                if slot.shows(identity) {
                    if slot.identity.isEmpty { slot.identity = identity }
                    slot.lookups += lookups
                    s.byInode[ino] = slot
                    return Inode(ino)
                }
            }
            let ino = s.next
            s.next += 1
            s.byInode[ino] = Slot(node: node, identity: identity, lookups: lookups)
            s.setCurrent(node, ino)
            return Inode(ino)
        }
    }

    /// Counts one more kernel reference (READDIRPLUS entries, LOOKUP of a known node).
    func addLookup(_ inode: Inode) {
        state.withLock { s in s.byInode[inode.rawValue]?.lookups += 1 }
    }

    /// The node behind an inode, if the kernel may still use it.
    func slot(_ inode: Inode) -> Slot? {
        state.withLock { $0.byInode[inode.rawValue] }
    }

    /// The current inode of `node`, if it has one (for invalidation).
    func existingInode(_ node: Node) -> Inode? {
        state.withLock { s in s.byNode[node].map { Inode($0) } }
    }

    /// The stored identity of `node`'s current inode.
    func identity(of node: Node) -> String? {
        state.withLock { s in s.byNode[node].flatMap { s.byInode[$0]?.identity } }
    }

    /// FORGET: drops `count` references; at zero the slot goes when `isGone(node, identity)`
    /// says its object no longer exists (otherwise it stays, keeping the number stable).
    func forget(_ inode: Inode, count: UInt64, isGone: (Node, String) -> Bool) {
        guard inode != .root else { return }
        let candidate = state.withLock { s -> Slot? in
            guard var slot = s.byInode[inode.rawValue] else { return nil }
            slot.lookups -= min(slot.lookups, count)
            s.byInode[inode.rawValue] = slot
            return slot.lookups == 0 ? slot : nil
        }
        guard let c = candidate else { return }
        let stale = state.withLock { $0.byNode[c.node] != inode.rawValue }
        guard stale || isGone(c.node, c.identity) else { return }
        state.withLock { s in
            guard let slot = s.byInode[inode.rawValue], slot.lookups == 0 else { return }
            s.byInode.removeValue(forKey: inode.rawValue)
            s.removeCurrent(slot.node, inode.rawValue)
        }
    }

    /// Drops `node`'s slot when the kernel holds no reference to it (its object is gone;
    /// e.g. it was only ever shown by a plain READDIR, which never gets a FORGET).
    func dropIfUnreferenced(_ node: Node) {
        state.withLock { s in
            guard let ino = s.byNode[node], let slot = s.byInode[ino], slot.lookups == 0 else { return }
            s.byInode.removeValue(forKey: ino)
            s.removeCurrent(node, ino)
        }
    }

    /// A member was renamed (an image `mv`): its nodes in `collections` (the image file
    /// and its `/images.d` view) move along.
    func renameMember(in collections: [CollectionID], _ old: String, to new: String) {
        state.withLock { s in
            let moving = s.byInode.filter { slot in
                slot.value.node.member.map { collections.contains($0.0) && $0.1 == old } ?? false
            }
            // Only the current inodes become current under the new name: a replaced
            // object's inode the kernel still holds moves along but stays superseded.
            let current = Set(moving.filter { s.byNode[$0.value.node] == $0.key }.map(\.key))
            for (ino, slot) in moving { s.removeCurrent(slot.node, ino) }
            for (ino, var slot) in moving {
                slot.node = slot.node.renamingMember(to: new)
                s.byInode[ino] = slot
                guard current.contains(ino) else { continue }
                if let displaced = s.byNode[slot.node], displaced != ino {
                    s.byInode[displaced]?.identity = "\u{0}replaced"
                }
                s.setCurrent(slot.node, ino)
            }
        }
    }

    /// The current key and entry-file nodes under a key directory (`.field(c, name,
    /// "metadata")`), with their inodes (for invalidation).
    func nodes(under keyDirectory: Node) -> [(Node, Inode)] {
        state.withLock { s in
            (s.underKeyDirectory[keyDirectory] ?? []).compactMap { ino in s.byInode[ino].map { ($0.node, Inode(ino)) } }
        }
    }

    /// The current inodes of the fields (files and key directories) of a member directory
    /// (`.member(c, name)`), for invalidation.
    func fieldInodes(of member: Node) -> [Inode] {
        state.withLock { s in (s.fieldsOfMember[member] ?? []).map { Inode($0) } }
    }

    /// Number of inodes known (for tests).
    var count: Int { state.withLock { $0.byInode.count } }
}
