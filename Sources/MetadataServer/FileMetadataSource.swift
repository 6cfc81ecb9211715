import CloudCore
import Foundation

/// The answers of a metadata service on a compute host's local DHCP port (Neutron's
/// isolated metadata, with the documents the controller sent the agent instead of a
/// proxy back to it): `DIRECTORY/IP.json`, one `MetadataDocument` per guest of the
/// segment, read at each request so the agent's rewrites show at once. The server runs in
/// the segment's own namespace, so the client's address alone names the guest.
public final class FileMetadataSource: MetadataSource {
    let directory: String

    public init(directory: String) { self.directory = directory }

    public func metadata(client: String, local: String) -> MetadataDocument? {
        // Only a dotted quad names a file: nothing else reaches outside the directory.
        guard client.split(separator: ".").count == 4, client.allSatisfy({ $0.isNumber || $0 == "." }),
              let data = FileManager.default.contents(atPath: "\(directory)/\(client).json") else { return nil }
        return try? JSONDecoder().decode(MetadataDocument.self, from: data)
    }
}
