import CloudCore
import Foundation

/// Copy-on-write overlays for instance disks (Nova's libvirt image backend `qcow2`: the
/// image stays shared and read-only, each instance writes only its own qcow2 delta).
public enum Overlay {
    /// Creates a qcow2 overlay at `path` backed by `backing` (format `backingFormat`: qcow2
    /// or raw, recorded in the overlay so QEMU never probes it), with virtual size
    /// max(backing virtual size, `sizeBytes`) (Nova grows the disk to the flavor's root_gb).
    /// An existing file at `path` is replaced. The image is written directly (`Qcow2Overlay`),
    /// the equivalent of `qemu-img create -f qcow2 -F FMT -b BACKING PATH [SIZE]`; a relative
    /// `backing` is made absolute first. Removes a partial file on failure. Throws `EIO` with
    /// the reason, `EINVAL` for a backing format other than qcow2/raw.
    public static func create(path: String, backing: String, backingFormat: DiskFormat,
                              sizeBytes: Int64?) throws(CloudError) {
        guard backingFormat == .qcow2 || backingFormat == .raw else {
            throw .invalid("an overlay needs a qcow2 or raw backing image, not \(backingFormat.rawValue)")
        }
        let backing = absolute(backing)
        let backingSize: Int64
        do throws(CloudError) {
            backingSize = try virtualSize(of: backing, format: backingFormat)
        } catch {
            throw CloudError(.io, "cannot create overlay \(path): backing image: \(error.reason)")
        }
        let size = max(backingSize, sizeBytes ?? 0)
        let image = try Qcow2Overlay.bytes(size: size, backing: backing, format: backingFormat)
        do throws(CloudError) {
            try SystemCall.writeFile(path, image)
        } catch {
            SystemCall.unlinkIfPresent(path)
            throw CloudError(error.errno, "cannot write overlay \(path): \(error.reason)")
        }
    }

    /// The size the guest sees of `backing`: the qcow2 header's size, or a raw file's length.
    /// The qcow2 header is checked like an upload, so an overlay never chains to an unsafe image.
    static func virtualSize(of backing: String, format: DiskFormat) throws(CloudError) -> Int64 {
        if format == .raw { return try SystemCall.fileSize(path: backing) }
        let detected = try FormatSniffer.detect(path: backing)
        guard detected.format == .qcow2 else {
            throw .invalid("\(backing) is \(detected.format.rawValue), not qcow2")
        }
        return detected.virtualSize
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
            .appendingPathComponent(path).standardizedFileURL.path
    }
}
