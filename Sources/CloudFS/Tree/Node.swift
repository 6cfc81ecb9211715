// CloudFS: the tree (SPEC "The tree"): path -> node, collections described once
// (Collections/), attribute files, waits, the events file, image uploads; implemented only
// against `CloudAPI`. This file names the shapes a node of the tree can have.
import CloudCore

/// One node of the tree, named by what it shows (not by an inode number).
enum Node: Hashable, Sendable {
    case root, readme, events
    /// A collection directory: `/instances`.
    case collection(CollectionID)
    /// A member: `/instances/web1` (a directory) or `/images/disk` (a file).
    case member(CollectionID, String)
    /// A file, or a key directory, of a member directory: `/instances/web1/status`.
    case field(CollectionID, String, String)
    /// An entry of a key directory: a file `/images.d/disk/properties/kernel`, a link
    /// `/instances/web1/volumes/vdb`, or a directory `/volumes/data/snapshots/s1`.
    case key(CollectionID, String, String, String)
    /// A file of a key directory's entry directory: `/volumes/data/snapshots/s1/status`.
    case entryField(CollectionID, String, String, String, String)
    /// A launch file being copied into `/instances/NAME` (LaunchFiles.swift): a regular
    /// file until it is closed, when the instance it describes takes its name.
    case launch(String)

    /// A member file being written (a key pair's key before it is registered).
    var isMember: Bool { if case .member = self { true } else { false } }

    /// The parent directory and this node's name in it (nil for the root).
    var parentAndName: (Node, String)? {
        switch self {
        case .root: nil
        case .readme: (.root, "README")
        case .events: (.root, "events")
        case .collection(let c): (.root, c.rawValue)
        case .member(let c, let m): (.collection(c), m)
        case .field(let c, let m, let f): (.member(c, m), f)
        case .key(let c, let m, let d, let k): (.field(c, m, d), k)
        case .entryField(let c, let m, let d, let k, let f): (.key(c, m, d, k), f)
        case .launch(let name): (.collection(CollectionID("instances")), name)
        }
    }

    /// The path inside the mount, e.g. `/instances/web1/status` (for events and errors).
    var path: String {
        guard let (parent, name) = parentAndName else { return "/" }
        let p = parent.path
        return (p == "/" ? "" : p) + "/" + name
    }

    /// The collection and member this node belongs to, if any.
    var member: (CollectionID, String)? {
        switch self {
        case .member(let c, let m), .field(let c, let m, _), .key(let c, let m, _, _), .entryField(let c, let m, _, _, _): (c, m)
        default: nil
        }
    }

    /// The member directory a field is in (`.member(c, name)` of `.field(c, name, f)`).
    var fieldOwner: Node? {
        if case .field(let c, let m, _) = self { .member(c, m) } else { nil }
    }

    /// The key directory a key or an entry's file is under (`.field(c, name, dir)`).
    var keyDirectory: Node? {
        switch self {
        case .key(let c, let m, let d, _), .entryField(let c, let m, let d, _, _): .field(c, m, d)
        default: nil
        }
    }

    /// The same node for its member renamed to `newName` (an image `mv`).
    func renamingMember(to newName: String) -> Node {
        switch self {
        case .member(let c, _): .member(c, newName)
        case .field(let c, _, let f): .field(c, newName, f)
        case .key(let c, _, let d, let k): .key(c, newName, d, k)
        case .entryField(let c, _, let d, let k, let f): .entryField(c, newName, d, k, f)
        default: self
        }
    }
}
