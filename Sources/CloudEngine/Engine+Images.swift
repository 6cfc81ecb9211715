import CloudCore
import CloudStore
import Foundation
import ImageStore

/// Glance: the image registry and its uploads.
extension Engine {
    public func images() -> [ImageInfo] { catalog.withLock { $0.images.values.sorted { $0.name < $1.name } } }
    public func image(_ name: String) -> ImageInfo? { catalog.withLock { $0.images[name] } }

    public func beginUpload(_ name: String, caller: Caller) throws(CloudError) -> any ImageUpload {
        try refusing("image", name, caller) { () throws(CloudError) -> any ImageUpload in
            try ObjectName.validate(name, kind: "image")
            if image(name) != nil { throw CloudError.exists("image '\(name)' already exists (images are immutable: rm it first)") }
            let id = UUID().uuidString.lowercased()
            let rec = ImageRecord(id: id, name: name, status: .queued, format: .unknown, created: Date(),
                                  ownerUID: caller.uid, path: config.imagesDir + "/" + id)
            mutation.lock(); defer { mutation.unlock() }
            try store.insertImage(rec)
            let ingest: ImageIngest
            do throws(CloudError) { ingest = try ImageIngest(path: rec.path) } catch {
                try? store.deleteImage(id: id)
                throw error
            }
            catalog.withLock { $0.images[name] = rec.info(properties: [:]) }
            events.append(kind: "image.queued", object: name, ["uid": "\(caller.uid)", "pid": "\(caller.pid)"])
            announce(ChangeNotice(.image, name))
            return ImageUploadSession(engine: self, record: rec, ingest: ingest, caller: caller)
        }
    }

    /// Applies `update` to the image row and the catalog; returns the new info.
    @discardableResult
    func imageChanged(update: (inout ImageRecord) -> Void, id: String) -> ImageInfo? {
        mutation.lock(); defer { mutation.unlock() }
        guard var rec = try? store.imageRecord(id: id) else { return nil }
        update(&rec)
        do { try store.updateImage(rec) } catch { log.error("image \(id): \(error)"); return nil }
        let info = catalog.withLock { c -> ImageInfo in
            let props = c.images[rec.name]?.properties ?? [:]
            let info = rec.info(properties: props)
            c.images[rec.name] = info
            if let a = rec.activated { c.imageActivated[id] = a }
            return info
        }
        announce(ChangeNotice(.image, rec.name))
        return info
    }

    func removeImageRow(id: String) {
        mutation.lock(); defer { mutation.unlock() }
        try? store.deleteImage(id: id)
        let name = catalog.withLock { c -> String? in
            guard let name = c.imageName(id: id) else { return nil }
            c.images[name] = nil
            c.imageActivated[id] = nil
            return name
        }
        if let name { announce(ChangeNotice(.image, name)) }
    }

    /// Instances whose disk or kernel boot depends on the image.
    func instancesUsing(_ img: ImageInfo) -> [String] {
        catalog.withLock { c in
            c.instances.values.filter { inst in
                if inst.imageId == img.id { return true }
                guard let base = c.images.values.first(where: { $0.id == inst.imageId }) else { return false }
                return base.properties["kernel"] == img.name || base.properties["ramdisk"] == img.name
            }.map(\.name).sorted()
        }
    }

    public func deleteImage(_ name: String, caller: Caller) throws(CloudError) {
        let img = try refusing("image", name, caller) { () throws(CloudError) -> ImageInfo in
            guard let img = image(name) else { throw CloudError.notFound("no image named '\(name)'") }
            guard caller.isAdmin || caller.uid == img.ownerUID else { throw CloudError(.accessDenied, "image '\(name)' is not yours") }
            guard img.status == .active else { throw CloudError.busy("image '\(name)' is still uploading (\(img.status.rawValue))") }
            let users = instancesUsing(img)
            guard users.isEmpty else {
                throw CloudError.busy("image '\(name)' is in use by instance(s) \(users.prefix(5).joined(separator: ", "))")
            }
            return img
        }
        removeImageRow(id: img.id)
        unlink(img.path)
        events.append(kind: "image.deleted", object: name, ["uid": "\(caller.uid)"])
    }

    public func renameImage(_ name: String, to newName: String, caller: Caller) throws(CloudError) {
        try refusing("image", name, caller) { () throws(CloudError) in
            try ObjectName.validate(newName, kind: "image")
            guard let img = image(name) else { throw CloudError.notFound("no image named '\(name)'") }
            guard caller.isAdmin || caller.uid == img.ownerUID else { throw CloudError(.accessDenied, "image '\(name)' is not yours") }
            if image(newName) != nil { throw CloudError.exists("image '\(newName)' already exists") }
            mutation.lock(); defer { mutation.unlock() }
            try store.renameImage(id: img.id, to: newName)
            catalog.withLock { c in
                var moved = img
                moved.name = newName
                c.images[name] = nil
                c.images[newName] = moved
                for (k, var inst) in c.instances where inst.imageId == img.id {
                    inst.imageName = newName
                    c.instances[k] = inst
                }
                if c.settings["default.image"] == name { c.settings["default.image"] = newName }
            }
            if (try? store.setting("default.image")) == name { try store.setSetting("default.image", newName) }
        }
        events.append(kind: "image.renamed", object: name, ["to": newName])
        announce(ChangeNotice(.image, name))
        announce(ChangeNotice(.image, newName))
    }

    public func setImageProperty(_ image: String, key: String, value: String?, caller: Caller) throws(CloudError) {
        try refusing("image", image, caller) { () throws(CloudError) in
            try ObjectName.validate(key, kind: "property")
            guard let img = self.image(image) else { throw CloudError.notFound("no image named '\(image)'") }
            guard caller.isAdmin || caller.uid == img.ownerUID else { throw CloudError(.accessDenied, "image '\(image)' is not yours") }
            if let value {
                guard value.utf8.count <= 255 else { throw CloudError.invalid("property values are limited to 255 bytes") }
                if key == "kernel" || key == "ramdisk" {
                    guard let ref = self.image(value) else { throw CloudError.notFound("\(key) names no image '\(value)'") }
                    guard ref.status == .active else { throw CloudError.busy("\(key) image '\(value)' is not active") }
                }
            } else if img.properties[key] == nil {
                throw CloudError.notFound("image '\(image)' has no property '\(key)'")
            }
            mutation.lock(); defer { mutation.unlock() }
            try store.setImageProperty(imageID: img.id, key: key, value: value)
            catalog.withLock { $0.images[image]?.properties[key] = value }
        }
        events.append(kind: "image.property", object: image, ["key": key, "value": value ?? "(removed)"])
        announce(ChangeNotice(.image, image))
    }
}
