import CloudCore
import CloudNetwork
import Foundation

/// Nova's config drive (nova/virt/configdrive.py): an ISO 9660 filesystem labelled
/// `config-2` holding the OpenStack and EC2 metadata, made with genisoimage with the
/// options Nova uses, attached to the guest as a read-only IDE cdrom.
enum ConfigDrive {
    /// The volume label cloud-init's ConfigDrive datasource looks for.
    static let label = "config-2"
    /// Its device on the IDE bus (Nova's `hdd` for a config drive).
    static let device = "hdd"

    /// Writes the drive for `metadata` to `path` (through a scratch directory and a
    /// `.part` file renamed into place, so a crash never leaves half a drive).
    static func build(_ metadata: InstanceMetadata, at path: String) throws(CloudError) {
        let fm = FileManager.default
        let scratch = path + ".d"
        let part = path + ".part"
        defer { try? fm.removeItem(atPath: scratch); try? fm.removeItem(atPath: part) }
        try? fm.removeItem(atPath: scratch)
        do {
            for (rel, bytes) in metadata.configDriveFiles() {
                let file = scratch + "/" + rel
                try fm.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data(bytes).write(to: URL(fileURLWithPath: file))
            }
        } catch {
            throw CloudError.io("cannot write the config drive's files under \(scratch): \(error.localizedDescription)")
        }
        let r = try CommandRunner().run(["genisoimage", "-o", part, "-ldots", "-allow-lowercase", "-allow-multidot", "-l",
                                         "-publisher", "cloudfs", "-quiet", "-J", "-r", "-V", label, scratch])
        guard r.status == 0 else {
            throw CloudError.io("genisoimage failed making the config drive: \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).suffix(300))")
        }
        guard rename(part, path) == 0 else { throw CloudError.io("cannot move the config drive into place at \(path)") }
    }
}
