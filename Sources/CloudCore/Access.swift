/// What a caller asks to do with an object: the question the cloud's one `authorize`
/// seam answers (Keystone's policy check in spirit; today's rules are ownership, the
/// admin, and Nova's instance lock).
public enum Access: Sendable, Equatable {
    /// See it: listings, lookups, reads of its files.
    case read
    /// Make one in a collection (mkdir, cp into /images).
    case create
    /// Change or remove something the caller owns (the owner or an admin).
    case change
    /// Act on an instance: like `change`, and refused to non-admins while it is locked.
    case operate
    /// Only an admin may; the phrase completes "only an admin may …" (e.g. "create flavors").
    case administer(String)
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

    public init(_ kind: String, _ name: String, ownerUID: UInt32? = nil, project: String = "", locked: Bool = false) {
        self.kind = kind; self.name = name; self.ownerUID = ownerUID; self.project = project; self.locked = locked
    }
}
