import CloudCore
import ISOImage
import Foundation

/// Nova's config drive (nova/virt/configdrive.py): an ISO 9660 filesystem labelled
/// `config-2` holding the OpenStack and EC2 metadata, with Rock Ridge and Joliet names as
/// Nova's `genisoimage -J -r` makes it (written in-process through libisofs, `ISOImage`),
/// attached to the guest as a read-only IDE cdrom.
enum ConfigDrive {
    /// The volume label cloud-init's ConfigDrive datasource looks for.
    static let label = "config-2"
    /// Its device on the IDE bus (Nova's `hdd` for a config drive).
    static let device = "hdd"

    /// Writes the drive for `metadata` to `path` (through a `.part` file renamed into
    /// place, so a crash never leaves half a drive).
    static func build(_ metadata: InstanceMetadata, at path: String) throws(CloudError) {
        let part = path + ".part"
        defer { unlink(part) }
        let files = metadata.configDriveFiles().map { (path: $0.0, bytes: $0.1) }
        try ISOImage.write(files, volume: label, publisher: "cloudfs", to: part)
        guard rename(part, path) == 0 else { throw CloudError.io("cannot move the config drive into place at \(path)") }
    }
}
