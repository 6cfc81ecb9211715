import CloudCore
import CloudStore
import Foundation
import ImageStore

/// Glance: `/images` (bytes in, bytes out) and `/images.d` (the registry: status, format,
/// checksum, properties). Uploads stream through `ImageUploadSession`; what instances need
/// of an image (which one boots, its kernel and ramdisk) goes through `ImageProvider`.
final class ImageService: ImagesAPI, ImageProvider, @unchecked Sendable {
    // @unchecked: immutable after init; state lives in the core.
    let core: EngineCore
    /// `/defaults/image` (SettingsService).
    let settings: any SettingsReader

    init(core: EngineCore, settings: any SettingsReader) { self.core = core; self.settings = settings }

    /// Glance's visibility decides who besides the owning project sees the image.
    static func ref(_ i: ImageInfo) -> ObjectRef {
        let readers: Readers = switch i.visibility {
        case .public: .everyone
        case .private: .project
        case .shared: .projects(i.sharedWith)
        }
        return ObjectRef("image", i.name, ownerUID: i.ownerUID, project: i.project, readers: readers)
    }

    // MARK: ImagesAPI

    func list(_ caller: Caller) -> [ImageInfo] {
        core.catalog.withLock { $0.images.values.sorted { $0.name < $1.name } }.filter { core.visible(caller, Self.ref($0)) }
    }

    func get(_ name: String, _ caller: Caller) -> ImageInfo? {
        guard let i = core.catalog.withLock({ $0.images[name] }), core.visible(caller, Self.ref(i)) else { return nil }
        return i
    }

    func beginUpload(_ name: String, _ caller: Caller) throws(CloudError) -> any ImageUpload {
        try core.refusing("image", name, caller) { () throws(CloudError) -> any ImageUpload in
            try ObjectName.validate(name, kind: "image")
            try core.authorize(caller, .create, ObjectRef("image", name))
            if core.catalog.withLock({ $0.images[name] }) != nil {
                throw CloudError.exists("image '\(name)' already exists (images are immutable: rm it first)")
            }
            let id = UUID().uuidString.lowercased()
            let rec = ImageRecord(id: id, name: name, status: .queued, format: .unknown, created: Date(),
                                  ownerUID: caller.uid, path: core.config.imagesDir + "/" + id,
                                  project: try core.project(of: caller), visibility: .private)
            let ingest = try core.write({ (s) throws(CloudError) -> ImageIngest in
                try s.insertImage(rec)
                do throws(CloudError) { return try ImageIngest(path: rec.path) } catch {
                    // The row goes with the failure: a refused upload leaves nothing.
                    do throws(CloudError) { try s.deleteImage(id: id) } catch let e {
                        throw CloudError.io("\(error.reason) (and its row could not be removed: \(e.reason))")
                    }
                    throw error
                }
            }) { c, _ in c.images[name] = rec.info(properties: [:]) }
            core.events.append(kind: "image.queued", object: name, ["uid": "\(caller.uid)", "pid": "\(caller.pid)"])
            core.announce(.image, name)
            return ImageUploadSession(images: self, record: rec, ingest: ingest, caller: caller)
        }
    }

    func delete(_ name: String, _ caller: Caller) throws(CloudError) {
        let img = try core.refusing("image", name, caller) { () throws(CloudError) -> ImageInfo in
            guard let img = get(name, caller) else { throw CloudError.notFound("no image named '\(name)'") }
            try core.authorize(caller, .change, Self.ref(img))
            guard img.status == .active else { throw CloudError.busy("image '\(name)' is still uploading (\(img.status.rawValue))") }
            let users = instancesUsing(img)
            guard users.isEmpty else {
                throw CloudError.busy("image '\(name)' is in use by instance(s) \(users.prefix(5).joined(separator: ", "))")
            }
            try removeRow(id: img.id)
            return img
        }
        unlink(img.path)
        core.events.append(kind: "image.deleted", object: name, ["uid": "\(caller.uid)"])
    }

    func rename(_ name: String, to newName: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("image", name, caller) { () throws(CloudError) in
            try ObjectName.validate(newName, kind: "image")
            guard let img = get(name, caller) else { throw CloudError.notFound("no image named '\(name)'") }
            try core.authorize(caller, .change, Self.ref(img))
            if core.catalog.withLock({ $0.images[newName] }) != nil { throw CloudError.exists("image '\(newName)' already exists") }
            // The instances' copy of the name and /defaults/image follow in the same transaction.
            try core.write({ (s) throws(CloudError) in try s.renameImage(id: img.id, from: name, to: newName) }) { c, _ in
                var moved = img
                moved.name = newName
                c.images[name] = nil
                c.images[newName] = moved
                for (k, var inst) in c.instances where inst.imageId == img.id {
                    inst.imageName = newName
                    c.instances[k] = inst
                }
                if c.settings[.defaultValue(.image)] == name { c.settings[.defaultValue(.image)] = newName }
            }
        }
        core.events.append(kind: "image.renamed", object: name, ["to": newName])
        core.announce(.image, name)
        core.announce(.image, newName)
    }

    func setProperty(_ image: String, key: String, value: String?, _ caller: Caller) throws(CloudError) {
        try core.refusing("image", image, caller) { () throws(CloudError) in
            try ObjectName.validate(key, kind: "property")
            guard let img = get(image, caller) else { throw CloudError.notFound("no image named '\(image)'") }
            try core.authorize(caller, .change, Self.ref(img))
            if let value {
                guard value.utf8.count <= 255 else { throw CloudError.invalid("property values are limited to 255 bytes") }
                if key == "kernel" || key == "ramdisk" {
                    guard let ref = get(value, caller) else { throw CloudError.notFound("\(key) names no image '\(value)'") }
                    guard ref.status == .active else { throw CloudError.busy("\(key) image '\(value)' is not active") }
                }
            } else if img.properties[key] == nil {
                throw CloudError.notFound("image '\(image)' has no property '\(key)'")
            }
            try core.write({ (s) throws(CloudError) in try s.setImageProperty(imageID: img.id, key: key, value: value) }) { c, _ in
                c.images[image]?.properties[key] = value
            }
        }
        core.events.append(kind: "image.property", object: image, ["key": key, "value": value ?? "(removed)"])
        core.announce(.image, image)
    }

    func setVisibility(_ image: String, _ visibility: ImageVisibility, _ caller: Caller) throws(CloudError) {
        try core.refusing("image", image, caller) { () throws(CloudError) in
            guard let img = get(image, caller) else { throw CloudError.notFound("no image named '\(image)'") }
            try core.authorize(caller, .change, Self.ref(img))
            if visibility == .public { try core.authorize(caller, .administer("make an image public"), Self.ref(img)) }
            _ = try changed(id: img.id) { $0.visibility = visibility.rawValue }
        }
        core.events.append(kind: "image.visibility", object: image, ["visibility": visibility.rawValue, "uid": "\(caller.uid)"])
    }

    func share(_ image: String, with projects: [String], _ caller: Caller) throws(CloudError) {
        try core.refusing("image", image, caller) { () throws(CloudError) in
            guard let img = get(image, caller) else { throw CloudError.notFound("no image named '\(image)'") }
            try core.authorize(caller, .change, Self.ref(img))
            let known = core.directory.withLock { $0.projects }
            for p in projects where known[p] == nil { throw CloudError.invalid("shared_with: no project named '\(p.prefix(64))'") }
            let list = Array(Set(projects)).sorted()
            _ = try changed(id: img.id) { $0.sharedWith = list.joined(separator: "\n") }
        }
        core.events.append(kind: "image.shared", object: image, ["with": projects.joined(separator: ","), "uid": "\(caller.uid)"])
    }

    // MARK: the registry, for uploads and start-up

    /// Loads the images.
    func load() throws(CloudError) {
        let images = try core.store.images()
        let activated = try core.store.imageActivationTimes()
        core.catalog.withLock { c in
            for i in images { c.images[i.name] = i }
            c.imageActivated = activated
        }
    }

    /// Applies `update` to the image row and the catalog; returns the new info, nil when
    /// the row is gone (the upload was removed meanwhile).
    func changed(id: String, _ update: (inout ImageRecord) -> Void) throws(CloudError) -> ImageInfo? {
        let info = try core.write({ (s) throws(CloudError) -> ImageRecord? in
            guard var rec = try s.imageRecord(id: id) else { return nil }
            update(&rec)
            try s.updateImage(rec)
            return rec
        }) { c, rec in
            guard let rec else { return }
            c.images[rec.name] = rec.info(properties: c.images[rec.name]?.properties ?? [:])
            if let a = rec.activated { c.imageActivated[id] = a }
        }
        guard let info else { return nil }
        core.announce(.image, info.name)
        return core.catalog.withLock { $0.images[info.name] }
    }

    /// Removes an image's row (an aborted upload, a delete).
    func removeRow(id: String) throws(CloudError) {
        let name = core.catalog.withLock { $0.imageName(id: id) }
        try core.write({ (s) throws(CloudError) in try s.deleteImage(id: id) }) { c, _ in
            if let name = c.imageName(id: id) { c.images[name] = nil }
            c.imageActivated[id] = nil
        }
        if let name { core.announce(.image, name) }
    }

    /// Instances whose disk or kernel boot depends on the image.
    private func instancesUsing(_ img: ImageInfo) -> [String] {
        core.catalog.withLock { c in
            c.instances.values.filter { inst in
                if inst.imageId == img.id { return true }
                guard let base = c.image(id: inst.imageId) else { return false }
                return base.properties["kernel"] == img.name || base.properties["ramdisk"] == img.name
            }.map(\.name).sorted()
        }
    }

    // MARK: ImageProvider

    func bootImage() throws(CloudError) -> ImageInfo {
        let wanted = core.setting(.defaultValue(.image))
        return try core.catalog.withLock { c throws(CloudError) -> ImageInfo in
            if let name = wanted {
                guard let img = c.images[name] else { throw CloudError.notFound("the default image '\(name)' does not exist") }
                guard img.status == .active else { throw CloudError.busy("the default image '\(name)' is not active (\(img.status.rawValue))") }
                return img
            }
            let bootable = c.images.values.filter { $0.status == .active && [.qcow2, .raw, .iso].contains($0.format) }
            guard let img = bootable.max(by: { (c.imageActivated[$0.id] ?? 0) < (c.imageActivated[$1.id] ?? 0) }) else {
                throw CloudError.notFound("no active bootable image: cp a disk image into /images first")
            }
            return img
        }
    }

    func activeImage(named name: String) throws(CloudError) -> ImageInfo {
        guard let i = core.catalog.withLock({ $0.images[name] }), i.status == .active else {
            throw CloudError.notFound("no active image named '\(name)'")
        }
        return i
    }

    func image(id: String) -> ImageInfo? { core.catalog.withLock { $0.image(id: id) } }

    func isVisible(_ image: ImageInfo, to caller: Caller) -> Bool { core.visible(caller, Self.ref(image)) }

    func bootFiles(imageID: String) throws(CloudError) -> (image: ImageInfo?, kernel: ImageInfo?, ramdisk: ImageInfo?) {
        let (img, kernel, ramdisk) = core.catalog.withLock { c -> (ImageInfo?, ImageInfo?, ImageInfo?) in
            let img = c.image(id: imageID)
            return (img, img?.properties["kernel"].flatMap { c.images[$0] }, img?.properties["ramdisk"].flatMap { c.images[$0] })
        }
        if let k = img?.properties["kernel"], kernel == nil { throw CloudError.notFound("kernel image '\(k)' does not exist") }
        if let k = img?.properties["ramdisk"], ramdisk == nil { throw CloudError.notFound("ramdisk image '\(k)' does not exist") }
        return (img, kernel, ramdisk)
    }
}
