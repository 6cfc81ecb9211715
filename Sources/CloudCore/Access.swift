/// What a caller asks to do with an object: the question the cloud's one `authorize`
/// seam answers (Keystone's policy check: the caller's role in the object's project, the
/// admin, and Nova's instance lock).
public enum Access: Sendable, Equatable {
    /// See it: listings, lookups, reads of its files.
    case read
    /// Make one in a collection (mkdir, cp into /images): a member of the project it goes into.
    case create
    /// Change or remove one of the project's objects (a member or an admin).
    case change
    /// Act on an instance: like `change`, and refused to non-admins while it is locked.
    case operate
    /// Only an admin may; the phrase completes "only an admin may …" (e.g. "create flavors").
    case administer(String)
    /// Change the project's role assignments (its managers or an admin).
    case manage
}

/// Who besides the members of an object's project may see it.
public enum Readers: Sendable, Equatable {
    /// The project's members (every registered user for an object of no project).
    case project
    /// Every registered user (a public image).
    case everyone
    /// The project's members and these projects' (a shared image).
    case projects([String])
    /// Only admins (hosts, the scheduler, /config).
    case admins
}

/// The object a request is about, as `authorize` needs to see it.
public struct ObjectRef: Sendable, Equatable {
    /// What it is, as refusals name it: `instance`, `image`, `floating IP` ...
    public var kind: String
    public var name: String
    /// The uid that created it (nil: the cloud's own, e.g. a flavor or a host).
    public var ownerUID: UInt32?
    /// The project it belongs to ("" when it belongs to none).
    public var project: String
    /// Nova's instance lock.
    public var locked: Bool
    public var readers: Readers

    public init(_ kind: String, _ name: String, ownerUID: UInt32? = nil, project: String = "", locked: Bool = false,
                readers: Readers = .project) {
        self.kind = kind; self.name = name; self.ownerUID = ownerUID; self.project = project; self.locked = locked
        self.readers = readers
    }
}
