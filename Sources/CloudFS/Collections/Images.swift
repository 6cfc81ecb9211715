import CloudCore

extension Collections {
    /// `/images/NAME`: Glance image bytes. `cp` in starts an upload (ImageUploads.swift),
    /// `cp` out reads the stored file, `rm` deletes, `mv` renames; metadata as
    /// `user.cloud.*` xattrs. Every user may upload (sticky directory).
    static let images = Collection.of(
        "images", notice: .image, noun: "image", mode: 0o1777,
        members: .files { name in Field(name: name, access: .readWrite, style: .imageBytes, read: { _, _ in [] }) },
        list: { ctx in ctx.api.images.list(ctx.caller) },
        lookup: { ctx, name in ctx.api.images.get(name, ctx.caller) },
        describe: imageMember,
        remove: { w, name throws(CloudError) in try w.api.images.delete(name, w.caller) })

    /// `/images.d/NAME/`: the Glance record of each image, read-only, and its properties
    /// (`kernel`, `ramdisk`, `cmdline` ... rw key files).
    static let imageRecords = Collection.of(
        "images.d", notice: .image, noun: "image",
        members: .directories(imageFields, keys: [imageProperties]),
        list: { ctx in ctx.api.images.list(ctx.caller) },
        lookup: { ctx, name in ctx.api.images.get(name, ctx.caller) },
        describe: imageMember)

    static func imageMember(_ i: ImageInfo) -> Member {
        Member(name: i.name, identity: i.id, owner: i.ownerUID, created: i.created.timeIntervalSince1970, project: i.project, object: i)
    }

    /// The Glance fields, as files of `/images.d/NAME/` and as `user.cloud.NAME` xattrs.
    static let imageValues: [(String, @Sendable (ImageInfo) -> String)] = [
        ("id", { $0.id }), ("status", { $0.status.rawValue }), ("format", { $0.format.rawValue }),
        ("size", { String($0.size) }), ("virtual_size", { String($0.virtualSize) }), ("checksum", { $0.checksum }),
        ("created", { Timestamp.string($0.created) }), ("min_ram", { String($0.minRamMB) }), ("min_disk", { String($0.minDiskGB) }),
    ]

    static let imageFields: [Field] = imageValues.map { name, value in .text(name, ImageInfo.self, .readOnly, value) } + [
        .text("project", ImageInfo.self) { $0.project },
        // Glance's visibility: public (every user; only an admin makes it), private (the
        // project), shared (the project and those in shared_with).
        .text("visibility", ImageInfo.self, .readWrite, { $0.visibility.rawValue }) { w, name, v throws(CloudError) in
            let word = v.trimmingCharacters(in: .whitespacesAndNewlines)
            let visibility = try w.parse { () throws(CloudError) -> ImageVisibility in
                guard let vis = ImageVisibility(rawValue: word) else {
                    throw CloudError.invalid("visibility: '\(word.prefix(32))' is not public, private or shared")
                }
                return vis
            }
            try w.api.images.setVisibility(name, visibility, w.caller)
        },
        severalLines(emptied(.lines("shared_with", ImageInfo.self, .readWrite, { $0.sharedWith }) { w, name, v throws(CloudError) in
            try w.api.images.share(name, with: v.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }, w.caller)
        })),
    ]

    /// `properties/`: Glance's image properties, one file each (keys at most 255 bytes).
    static let imageProperties = KeyDirectory(
        name: "properties",
        entries: { ($0 as? ImageInfo)?.properties ?? [:] },
        set: { w, image, key, value throws(CloudError) in try w.api.images.setProperty(image, key: key, value: value, w.caller) },
        isKey: { !$0.isEmpty && $0.utf8.count <= 255 && !$0.hasPrefix(".") && !$0.contains("/") })
}
