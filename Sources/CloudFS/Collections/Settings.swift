import CloudCore

extension Collections {
    /// `/defaults/`: what mkdir uses (image, flavor, network, project, group,
    /// availability_zone), one rw value file each.
    static let defaults = keyedDirectory(
        "defaults", notice: .defaults, DefaultKey.self,
        read: { ctx, k in ctx.api.settings.defaultValue(k, ctx.caller) },
        write: { w, k, v throws(CloudError) in try w.api.settings.setDefault(k, v, w.caller) })

    /// `/config/`: the compute manager's live options (admin, validated on write).
    static let config = keyedDirectory(
        "config", notice: .config, ConfigKey.self,
        read: { ctx, k in ctx.api.settings.configValue(k, ctx.caller) },
        write: { w, k, v throws(CloudError) in try w.api.settings.setConfig(k, v, w.caller) })

    /// A directory with one rw file per case of a key type (`DefaultKey`, `ConfigKey`).
    static func keyedDirectory<K: RawRepresentable & CaseIterable & Sendable>(
        _ id: String, notice: ChangeNotice.Kind, _ type: K.Type,
        read: @escaping @Sendable (Context, K) -> String,
        write: @escaping @Sendable (WriteContext, K, String) throws(CloudError) -> Void) -> Collection where K.RawValue == String {
        settingsDirectory(
            id, notice: notice, keys: { _ in K.allCases.map(\.rawValue) },
            read: { ctx, key in K(rawValue: key).map { read(ctx, $0) } },
            write: { w, key, v throws(CloudError) in
                guard let k = K(rawValue: key) else { throw CloudError.readOnly("\(key) is read-only") }
                try write(w, k, v)
            })
    }

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
