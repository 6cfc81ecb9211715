import CloudCore
import Foundation

/// A top-level directory of the tree, by name (`instances`, `images.d`, `defaults`).
struct CollectionID: RawRepresentable, Hashable, Sendable {
    let rawValue: String
    init(rawValue: String) { self.rawValue = rawValue }
    init(_ name: String) { rawValue = name }
}

/// Who a read or write is for: the cloud and the caller the kernel named. Readers that
/// are not a FUSE request (invalidation, FORGET) use the cloud's own caller.
struct Context: Sendable {
    let api: any CloudAPI
    let caller: Caller
    /// Who the caller is to the cloud (read once per request).
    let identity: CallerIdentity

    init(api: any CloudAPI, caller: Caller) {
        self.api = api
        self.caller = caller
        identity = api.identity(of: caller)
    }
}

/// A write being applied: its context, the file's path (for refusals), and `parse`, which
/// turns the written text into a typed command and records a refusal when it cannot.
struct WriteContext: Sendable {
    let api: any CloudAPI
    let caller: Caller
    let path: String

    /// Runs a parser of written text; its `EINVAL` is recorded in /events (with the path)
    /// before it is thrown, as every refusal is.
    func parse<T>(_ parser: () throws(CloudError) -> T) throws(CloudError) -> T {
        do { return try parser() } catch {
            api.recordRefusal(error, object: path, caller: caller)
            throw error
        }
    }
}

/// How a file of the tree may be used; its permission bits follow.
enum FileAccess: Sendable {
    case readOnly, readWrite, writeOnly

    var permissions: UInt32 {
        switch self {
        case .readOnly: 0o444
        case .readWrite: 0o644
        case .writeOnly: 0o200   // `ctl`: one action per write, like Nova's actions
        }
    }
}

/// How a file's bytes are served.
enum FileStyle: Sendable {
    /// A value snapshot taken at open (`cat` never sees it torn); writes apply at write time.
    case value
    /// `wait`: a read blocks until the object is stable (WaitRead.swift).
    case wait
    /// A log outside the tree (an instance's serial console), read by descriptor; its
    /// path comes from the object.
    case log(@Sendable (any Sendable) -> String)
    /// Image bytes: cp in and out of the image store (ImageUploads.swift).
    case imageBytes
    /// `tty`: the running guest's serial console, read and written as a stream
    /// (ConsoleFiles.swift).
    case console
}

/// One file of a member directory, or the file a member of a file collection is.
struct Field: Sendable {
    var name: String
    var access: FileAccess
    var style: FileStyle = .value
    /// The file's content for the member's object.
    var read: @Sendable (any Sendable, Context) -> [UInt8]
    /// Applies a write of `value` (trimmed) to the member named by the second argument.
    var write: (@Sendable (WriteContext, String, String) throws(CloudError) -> Void)?
    /// An empty value means something (disassociate, no rules): truncating the file
    /// without writing (`: > file`) applies it.
    var emptiedByTruncate = false
    /// Values of several lines, which shells may write in several WRITEs.
    var severalLines = false
    /// Long values (user data) are applied whole when the writer closes the file, so a
    /// value refused part-way never leaves its first pieces applied.
    var appliesAtClose = false
    /// It counts objects of other collections (a host's instances and usage): their
    /// commits announce only themselves, so the kernel keeps its attributes for the
    /// short `Options.countedAttributeTimeout`, not until an invalidation.
    var countsOthers = false

    /// The same field, marked as counting objects of other collections.
    func counting() -> Field {
        var f = self
        f.countsOthers = true
        return f
    }

    /// Kernel attribute cache time: a log that grows is never cached. `wait` and `tty`
    /// block or stream, but always show size 0 and are read with direct I/O: their
    /// attributes are as stable as any value file's, and `cat wait` then costs no GETATTR
    /// for its fstat.
    var isVolatile: Bool {
        switch style {
        case .log: true
        case .wait, .console, .value, .imageBytes: false
        }
    }

    /// `wait` and `tty` show size 0, the member's creation time and its owner for the
    /// member's whole life: a change of the object leaves their attributes as they were,
    /// so it invalidates nothing of theirs.
    var hasFixedAttributes: Bool {
        switch style {
        case .wait, .console: true
        case .value, .imageBytes, .log: false
        }
    }

    /// A typed field: `read` gets the member's object as `T`.
    static func of<T: Sendable>(_ name: String, _ type: T.Type, _ access: FileAccess = .readOnly,
                                read: @escaping @Sendable (T, Context) -> [UInt8],
                                write: (@Sendable (WriteContext, String, String) throws(CloudError) -> Void)? = nil) -> Field {
        Field(name: name, access: access, read: { obj, ctx in (obj as? T).map { read($0, ctx) } ?? [] }, write: write)
    }

    /// A one-value field: `value` of the object, newline-terminated (empty stays empty).
    static func text<T: Sendable>(_ name: String, _ type: T.Type, _ access: FileAccess = .readOnly,
                                  _ value: @escaping @Sendable (T) -> String,
                                  write: (@Sendable (WriteContext, String, String) throws(CloudError) -> Void)? = nil) -> Field {
        of(name, type, access, read: { t, _ in Text.value(value(t)) }, write: write)
    }

    /// A list field: one item per line.
    static func lines<T: Sendable>(_ name: String, _ type: T.Type, _ access: FileAccess = .readOnly,
                                   _ items: @escaping @Sendable (T) -> [String],
                                   write: (@Sendable (WriteContext, String, String) throws(CloudError) -> Void)? = nil) -> Field {
        of(name, type, access, read: { t, _ in Text.lines(items(t)) }, write: write)
    }
}

/// What the entries of a key directory are.
enum KeyKind: Sendable {
    /// Files holding one value each (`properties/KEY`): created by writing, removed by `rm`.
    case values
    /// Symbolic links whose target is the value (`instances/NAME/volumes/vdb ->
    /// ../../../volumes/data`): `ln -s` sets one (the value is the target written), `rm`
    /// removes it.
    case links
    /// Directories holding these files (`volumes/NAME/snapshots/SNAP/`): `mkdir` sets one
    /// (with ""), `rmdir` removes it; `entry` gives the object their fields read.
    case directories([Field], entry: @Sendable (any Sendable, String) -> (any Sendable)?)
}

/// A directory inside each member whose entries are keys (`images.d/NAME/properties/`,
/// `volumes/NAME/snapshots/`): listed, read, made and removed through `set`.
struct KeyDirectory: Sendable {
    var name: String
    /// The keys and values of the member's object.
    var entries: @Sendable (any Sendable) -> [String: String]
    /// Sets (nil: removes) one key of the named member.
    var set: @Sendable (WriteContext, String, String, String?) throws(CloudError) -> Void
    /// Whether a file name can be a key.
    var isKey: @Sendable (String) -> Bool
    /// How its key files may be used (`usage/` is read-only).
    var access: FileAccess = .readWrite
    var kind: KeyKind = .values
    /// Its values count objects of other collections (a project's `usage/`), like
    /// `Field.countsOthers`.
    var countsOthers = false

    /// The files of each entry, when entries are directories.
    var entryFields: [Field]? {
        if case .directories(let fields, _) = kind { return fields }
        return nil
    }

    var isLinks: Bool { if case .links = kind { true } else { false } }
    var isValues: Bool { if case .values = kind { true } else { false } }
}

/// What a collection's members are.
enum Members: Sendable {
    /// Directories holding these files (and key directories).
    case directories([Field], keys: [KeyDirectory] = [])
    /// Files, each described by the field the member name selects (nil: no such file).
    case files(@Sendable (String) -> Field?)
}

/// A member as listed or looked up: what `stat` shows of it, and its object (the API's
/// info value) for the field readers.
struct Member: Sendable {
    var name: String
    /// The identity of the object (its uuid), "" when it has none: an object deleted and
    /// made again under the same name gets a new inode.
    var identity = ""
    var owner: UInt32 = 0
    /// Its creation time; nil: the mount time.
    var created: Double? = nil
    /// The project it belongs to (its group in `stat`, and what the caller's role there
    /// allows); nil for the cloud's own objects.
    var project: String? = nil
    /// Being deleted: the kernel may not cache its name (entry timeout 0), so the name
    /// fails `stat` the moment it leaves the listing, not when the invalidation lands.
    var leaving = false
    var object: any Sendable
}

/// One collection of the tree, described once (go-fuse's node capabilities, as a value):
/// how to list and look up its members, make and remove one, and the table of their
/// files. CloudFS serves every collection from its descriptor; a new collection is one
/// file under Collections/ and one line in `Collections.all`.
struct Collection: Sendable {
    var id: CollectionID
    /// The change notices that concern its members (`ChangeNotice.kind`).
    var notice: ChangeNotice.Kind
    /// The directory's permission bits: 0755, or 01777 (sticky, like /tmp) where every
    /// user may create members and only the owner removes one.
    var mode: UInt32 = 0o755
    var members: Members
    /// Its members are a fixed set of names (a miss can be cached by the kernel).
    var fixedMembers = false
    /// A notice about one member can change the others' files too (scheduler options).
    var noticeTouchesAll = false
    /// What a member is called in refusals ("instance", "floating IP").
    var noun: String
    var list: @Sendable (Context) -> [Member]
    /// A cheaper `list` for a directory listing, when the collection has one: members
    /// whose `object` is only what `stat` of the directory needs, never read as a value.
    var entries: (@Sendable (Context) -> [Member])? = nil
    var lookup: @Sendable (Context, String) -> Member?
    /// mkdir (or, for file collections, creating a file): makes the member.
    var create: (@Sendable (WriteContext, String) throws(CloudError) -> Void)?
    /// rmdir (or, for file collections, unlink): removes the member.
    var remove: (@Sendable (WriteContext, String) throws(CloudError) -> Void)?

    /// The file `name` of member directory `member`.
    func field(_ name: String, member: String) -> Field? {
        if case .directories(let fields, _) = members { return fields.first { $0.name == name } }
        return nil
    }

    /// The file a member of a file collection is.
    func memberFile(_ name: String) -> Field? {
        if case .files(let file) = members { return file(name) }
        return nil
    }

    /// The key directory of a member directory, by name.
    func keyDirectory(_ name: String) -> KeyDirectory? {
        if case .directories(_, let keys) = members { return keys.first { $0.name == name } }
        return nil
    }

    /// The typed member builder: `describe` says what `stat` shows of an object.
    static func of<T: Sendable>(_ id: String, notice: ChangeNotice.Kind, noun: String, mode: UInt32 = 0o755,
                                members: Members,
                                list: @escaping @Sendable (Context) -> [T],
                                lookup: @escaping @Sendable (Context, String) -> T?,
                                describe: @escaping @Sendable (T) -> Member,
                                entries: (@Sendable (Context) -> [Member])? = nil,
                                create: (@Sendable (WriteContext, String) throws(CloudError) -> Void)? = nil,
                                remove: (@Sendable (WriteContext, String) throws(CloudError) -> Void)? = nil) -> Collection {
        Collection(id: CollectionID(id), notice: notice, mode: mode, members: members, noun: noun,
                   list: { ctx in list(ctx).map(describe) }, entries: entries,
                   lookup: { ctx, name in lookup(ctx, name).map(describe) },
                   create: create, remove: remove)
    }
}

/// The bytes of the tree's value files.
enum Text {
    /// `value` plus a newline, or nothing for "".
    static func value(_ value: String) -> [UInt8] {
        if value.isEmpty { return [] }
        return value.hasSuffix("\n") ? Array(value.utf8) : Array((value + "\n").utf8)
    }

    /// `info.json`: one JSON object with sorted keys, pretty-printed, newline-terminated.
    static func json(_ object: [String: Any]) -> [UInt8] {
        do {
            let data = try JSONText.encode(object)
            return Array(data) + [UInt8(ascii: "\n")]
        } catch {
            return Text.value("{\"error\": \"cannot encode: \(error.localizedDescription)\"}")
        }
    }

    /// One item per line (`ip`, `mac`, `instances`).
    static func lines(_ items: [String]) -> [UInt8] {
        items.isEmpty ? [] : Array((items.joined(separator: "\n") + "\n").utf8)
    }
}
