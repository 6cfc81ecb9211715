import CloudCore
import Foundation
import Synchronization

/// libvirt's embedded QEMU driver (`qemu:///embed?root=DIR`): the QEMU driver running inside
/// this process, keeping all its config and state under DIR. Facts that shape this file
/// (verified with libvirt 9.0):
/// - As root, libvirt runs QEMU as the compiled-in user (`libvirt-qemu` on Debian) unless
///   DIR/etc/qemu.conf says otherwise; that user sees /dev/kvm differently from root and every
///   start then re-probes QEMU (~44 s). Writing `user`/`group = "root"` makes a start ~1 s.
/// - The driver also needs that compiled-in user and group to *exist* even when qemu.conf
///   overrides them, or initialization fails ("Failed to parse user 'libvirt-qemu'").
/// - QEMU's stdout/stderr go through virtlogd by default, a daemon nobody runs here:
///   `stdio_handler = "file"` makes QEMU write them to DIR/log/qemu itself.
/// - QEMU gets a private mount namespace by default (`namespaces = ["mount"]`), a copy of
///   ours that includes the cloudfs FUSE mount: after `fusermount -u` the copy keeps the FUSE
///   connection alive, the daemon never sees the unmount, and its root stays locked. cloudfs
///   sets `namespaces = []`.
/// - Only one root per process, for the life of the process: once a root is open, opening
///   another fails, and a failed initialization leaves the driver dead ("qemu state driver
///   is not active") until the process exits.
enum EmbedRoot {
    /// The `root` of a `qemu:///embed?root=DIR` URI (percent-decoded), or nil for other URIs.
    static func root(of uri: String) -> String? {
        guard let components = URLComponents(string: uri), components.scheme == "qemu",
              components.path == "/embed" else { return nil }
        return components.queryItems?.first(where: { $0.name == "root" })?.value
    }

    /// Builds `qemu:///embed?root=DIR`, percent-encoding what a URI query cannot hold.
    static func uri(root: String) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+#?%")
        return "qemu:///embed?root=" + (root.addingPercentEncoding(withAllowedCharacters: allowed) ?? root)
    }

    /// The qemu.conf settings cloudfs needs: QEMU runs as root (see above), and QEMU's own
    /// stdout/stderr go to a plain file instead of through virtlogd, a daemon that is not
    /// running when libvirt is embedded (else: "Failed to connect socket to
    /// '/run/libvirt/virtlogd-sock'"), and no private mount namespace (see above).
    /// Values are written as given (qemu.conf syntax).
    static let settings: [(key: String, value: String)] = [
        ("user", "\"root\""), ("group", "\"root\""), ("stdio_handler", "\"file\""), ("namespaces", "[]"),
    ]

    /// Writes DIR/etc/qemu.conf with `settings`, creating the directories. Lines of an
    /// existing qemu.conf are kept, except its own values for those keys.
    /// Throws `EIO` when the directory or file cannot be written.
    static func prepare(root: String) throws(CloudError) {
        let etc = root + "/etc"
        let conf = etc + "/qemu.conf"
        do {
            try FileManager.default.createDirectory(atPath: etc, withIntermediateDirectories: true)
            var lines: [String] = []
            if let old = try? String(contentsOfFile: conf, encoding: .utf8) {
                lines = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                    .filter { line in !settings.contains { isSetting(line, $0.key) } }
                while lines.last == "" { lines.removeLast() }
            }
            lines += settings.map { "\($0.key) = \($0.value)" }
            let text = lines.joined(separator: "\n") + "\n"
            if (try? String(contentsOfFile: conf, encoding: .utf8)) != text {
                try text.write(toFile: conf, atomically: true, encoding: .utf8)
            }
        } catch {
            throw .io("cannot write \(conf) for the embedded QEMU driver: \(error.localizedDescription)")
        }
    }

    private static func isSetting(_ line: String, _ key: String) -> Bool {
        let t = line.drop(while: { $0 == " " || $0 == "\t" })
        guard t.hasPrefix(key) else { return false }
        return t.dropFirst(key.count).drop(while: { $0 == " " || $0 == "\t" }).hasPrefix("=")
    }

    /// The first embedded-driver open failure of this process: later opens fail with a
    /// vaguer message ("qemu state driver is not active"), so the first cause is kept.
    private static let firstFailure = Mutex<String?>(nil)

    /// Adds what the operator needs to know to an embedded-driver open failure.
    static func explain(_ message: String) -> String {
        var text = message
        if message.contains("Failed to parse user") || message.contains("Failed to parse group") {
            text += " (as root, the embedded QEMU driver needs its compiled-in user and group to exist "
                + "even though qemu.conf overrides them; on Debian: `addgroup --system libvirt-qemu && "
                + "adduser --system --no-create-home --ingroup libvirt-qemu libvirt-qemu`, "
                + "or install libvirt-daemon-system)"
        }
        let first: String? = firstFailure.withLock { first in
            if first == nil { first = text; return nil }
            return first
        }
        if let first, message.contains("not active") {
            text += " (the embedded QEMU driver failed to initialize earlier in this process and stays "
                + "unusable until it restarts; first failure: \(first))"
        }
        return text
    }
}
