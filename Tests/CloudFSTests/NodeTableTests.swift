@testable import CloudFS
import FuseKit
import XCTest

/// `NodeTable`'s indexes of the nodes under each key directory and of the fields of each
/// member directory, which change notices use instead of a walk or a lookup per field.
final class NodeTableTests: XCTestCase {
    let volumes = CollectionID("volumes"), instances = CollectionID("instances")

    func under(_ t: NodeTable, _ c: CollectionID, _ name: String, _ dir: String) -> Set<Node> {
        Set(t.nodes(under: .field(c, name, dir)).map(\.0))
    }

    func testKeysAndEntryFilesAreFoundUnderTheirOwnKeyDirectoryOnly() {
        let t = NodeTable()
        _ = t.inode(for: .key(instances, "web1", "metadata", "role"), identity: "i1", lookups: 1)
        _ = t.inode(for: .key(instances, "web2", "metadata", "role"), identity: "i2", lookups: 1)
        _ = t.inode(for: .field(instances, "web1", "status"), identity: "i1", lookups: 1)
        let snap = t.inode(for: .key(volumes, "data", "snapshots", "s1"), identity: "v1", lookups: 1)
        _ = t.inode(for: .entryField(volumes, "data", "snapshots", "s1", "status"), identity: "v1", lookups: 1)
        XCTAssertEqual(under(t, instances, "web1", "metadata"), [.key(instances, "web1", "metadata", "role")])
        XCTAssertEqual(under(t, volumes, "data", "snapshots"),
                       [.key(volumes, "data", "snapshots", "s1"), .entryField(volumes, "data", "snapshots", "s1", "status")])
        XCTAssertEqual(under(t, instances, "web1", "status"), [])

        // Forgotten while its object is gone: no longer indexed.
        t.forget(snap, count: 1) { _, _ in true }
        XCTAssertEqual(under(t, volumes, "data", "snapshots"), [.entryField(volumes, "data", "snapshots", "s1", "status")])
        t.forget(t.existingInode(.entryField(volumes, "data", "snapshots", "s1", "status"))!, count: 1) { _, _ in true }
        XCTAssertEqual(under(t, volumes, "data", "snapshots"), [])
    }

    func testAReplacedObjectsNodeIsIndexedOnceWithItsNewInode() {
        let t = NodeTable()
        let key = Node.key(instances, "web1", "metadata", "role")
        let old = t.inode(for: key, identity: "i1", lookups: 1)
        let new = t.inode(for: key, identity: "i1-again", lookups: 1)
        XCTAssertNotEqual(old, new)
        XCTAssertEqual(t.nodes(under: .field(instances, "web1", "metadata")).map(\.1), [new])
        // The kernel forgets the old inode: the new one stays indexed.
        t.forget(old, count: 1) { _, _ in true }
        XCTAssertEqual(t.nodes(under: .field(instances, "web1", "metadata")).map(\.1), [new])
    }

    func testRenamedMembersKeysMoveWithIt() {
        let t = NodeTable()
        let ino = t.inode(for: .key(instances, "old", "metadata", "k"), identity: "i1", lookups: 1)
        t.renameMember(in: [instances], "old", to: "new")
        XCTAssertEqual(under(t, instances, "old", "metadata"), [])
        XCTAssertEqual(t.nodes(under: .field(instances, "new", "metadata")).map(\.1), [ino])
        t.dropIfUnreferenced(.key(instances, "new", "metadata", "k"))
        XCTAssertEqual(under(t, instances, "new", "metadata"), [.key(instances, "new", "metadata", "k")], "still referenced")
    }

    /// A replaced object's inode that the kernel still holds moves with a rename but does
    /// not become the renamed node's current inode (which one did depended on hash order).
    func testARenameKeepsAReplacedInodeSuperseded() {
        for extra in 0..<24 {   // other fields, so the hash order differs from round to round
            let t = NodeTable()
            let field = Node.field(instances, "web1", "status")
            let old = t.inode(for: field, identity: "i1", lookups: 1)
            let new = t.inode(for: field, identity: "i1-again", lookups: 1)
            for n in 0..<extra { _ = t.inode(for: .field(instances, "web1", "f\(n)"), identity: "i1-again", lookups: 1) }
            t.renameMember(in: [instances], "web1", to: "web3")
            XCTAssertEqual(t.existingInode(.field(instances, "web3", "status")), new)
            XCTAssertNil(t.existingInode(field))
            t.forget(old, count: 1) { _, _ in false }
            XCTAssertEqual(t.existingInode(.field(instances, "web3", "status")), new, "forgetting the old inode leaves the new")
        }
    }

    func testAMembersFieldsAreIndexedUnderItAlone() {
        let t = NodeTable()
        let status = t.inode(for: .field(instances, "web1", "status"), identity: "i1", lookups: 1)
        let metadata = t.inode(for: .field(instances, "web1", "metadata"), identity: "i1", lookups: 1)
        _ = t.inode(for: .key(instances, "web1", "metadata", "role"), identity: "i1", lookups: 1)
        _ = t.inode(for: .field(instances, "web2", "status"), identity: "i2", lookups: 1)
        _ = t.inode(for: .member(instances, "web1"), identity: "i1", lookups: 1)
        XCTAssertEqual(Set(t.fieldInodes(of: .member(instances, "web1"))), [status, metadata], "fields and key directories, no keys")

        // Replaced: the new inode only. Forgotten while gone: no longer indexed.
        let again = t.inode(for: .field(instances, "web1", "status"), identity: "i1-again", lookups: 1)
        XCTAssertEqual(Set(t.fieldInodes(of: .member(instances, "web1"))), [again, metadata])
        t.forget(metadata, count: 1) { _, _ in true }
        XCTAssertEqual(t.fieldInodes(of: .member(instances, "web1")), [again])

        // Renamed: the fields move along.
        t.renameMember(in: [instances], "web1", to: "web3")
        XCTAssertEqual(t.fieldInodes(of: .member(instances, "web1")), [])
        XCTAssertEqual(t.fieldInodes(of: .member(instances, "web3")), [again])
    }
}
