import Foundation

/// Helpers shared by test targets: temporary directories removed on teardown, and the
/// paths of the built products.
public enum TestPaths {
    /// A fresh temporary directory under /tmp.
    public static func makeTempDir(_ prefix: String = "cloudfs-test") -> String {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        return String(cString: p!)
    }

    /// The package root (two levels above this file's directory).
    public static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// The directory of the built products (where `cloudfs` lives), as `swift build` writes it.
    public static var productsDir: String {
        if let d = ProcessInfo.processInfo.environment["CLOUDFS_BIN_DIR"] { return d }
        // xctest bundles live in the products directory.
        return Bundle.main.bundleURL.deletingLastPathComponent().path
    }

    /// The root of libvirt's embedded QEMU driver for this test process: the driver holds
    /// only one root per process, for the life of the process, so every test shares it
    /// (override with CLOUDFS_TEST_EMBED_ROOT); removed at exit. Kept short: libvirt puts
    /// UNIX sockets under it (108-byte limit).
    public static let embedRoot: String = {
        if let root = ProcessInfo.processInfo.environment["CLOUDFS_TEST_EMBED_ROOT"] { return root }
        let root = "/tmp/cloudfs-embed-\(getpid())"
        atexit { try? FileManager.default.removeItem(atPath: "/tmp/cloudfs-embed-\(getpid())") }
        return root
    }()

    /// The tiny guest built by examples/make-tiny-guest.sh, if present.
    public static var guestDir: String {
        ProcessInfo.processInfo.environment["CLOUDFS_GUEST_DIR"] ?? packageRoot + "/guest"
    }

    /// Where examples/make-cloud-guest.sh keeps the Debian 12 cloud-init guest.
    public static var cloudGuestDir: String {
        ProcessInfo.processInfo.environment["CLOUDFS_CLOUD_GUEST_DIR"] ?? packageRoot + "/guest-cloud"
    }
}
