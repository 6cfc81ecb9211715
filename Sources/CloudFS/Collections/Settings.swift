import CloudCore

extension Collections {
    /// `/defaults/`: what mkdir uses (image, flavor, network, project, group,
    /// availability_zone), one rw value file each.
    static let defaults = settingsDirectory(
        "defaults", notice: .defaults, keys: { _ in DefaultKey.allCases.map(\.rawValue) },
        read: { ctx, key in DefaultKey(rawValue: key).map { ctx.api.settings.defaultValue($0, ctx.caller) } },
        write: { w, key, v throws(CloudError) in
            guard let k = DefaultKey(rawValue: key) else { throw CloudError.readOnly("\(key) is read-only") }
            try w.api.settings.setDefault(k, v, w.caller)
        })

    /// `/config/`: the compute manager's live options (admin, validated on write).
    static let config = settingsDirectory(
        "config", notice: .config, keys: { _ in ConfigKey.allCases.map(\.rawValue) },
        read: { ctx, key in ConfigKey(rawValue: key).map { ctx.api.settings.configValue($0, ctx.caller) } },
        write: { w, key, v throws(CloudError) in
            guard let k = ConfigKey(rawValue: key) else { throw CloudError.readOnly("\(key) is read-only") }
            try w.api.settings.setConfig(k, v, w.caller)
        })

    /// `/scheduler/`: Nova's FilterScheduler options (rw), plus `last` (ro): the most
    /// recent decision, filter by filter. One option can change others (`weighers` sets
    /// multipliers), and every decision changes `last`.
    static let scheduler: Collection = {
        var c = settingsDirectory(
            "scheduler", notice: .scheduler, keys: { ctx in ctx.api.scheduler.keys + [schedulerLast] },
            read: { ctx, key in key == schedulerLast ? ctx.api.scheduler.last(ctx.caller) : ctx.api.scheduler.value(key, ctx.caller) },
            write: { w, key, v throws(CloudError) in try w.api.scheduler.set(key, v, w.caller) },
            readOnly: [schedulerLast])
        c.noticeTouchesAll = true
        return c
    }()

    static let schedulerLast = "last"

    /// A directory of option files: a fixed set of keys, each a value file; `read` gives a
    /// key's value (nil: no such key), `write` applies one.
    static func settingsDirectory(_ id: String, notice: ChangeNotice.Kind, keys: @escaping @Sendable (Context) -> [String],
                                  read: @escaping @Sendable (Context, String) -> String?,
                                  write: @escaping @Sendable (WriteContext, String, String) throws(CloudError) -> Void,
                                  readOnly: Set<String> = []) -> Collection {
        let file: @Sendable (String) -> Field? = { (key: String) -> Field? in
            let writer: (@Sendable (WriteContext, String, String) throws(CloudError) -> Void)? = readOnly.contains(key) ? nil : write
            let reader: @Sendable (any Sendable, Context) -> [UInt8] = { obj, ctx in
                guard let key = obj as? String, let value = read(ctx, key) else { return [] }
                return Text.value(value)
            }
            return Field(name: key, access: readOnly.contains(key) ? .readOnly : .readWrite, read: reader, write: writer)
        }
        var c = Collection(id: CollectionID(id), notice: notice, members: .files(file), noun: "option",
                           list: { ctx in keys(ctx).map { Member(name: $0, object: $0) } },
                           lookup: { ctx, key in read(ctx, key) == nil ? nil : Member(name: key, object: key) })
        c.fixedMembers = true
        return c
    }
}
