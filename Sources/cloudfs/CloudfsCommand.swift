import ArgumentParser
import Foundation

/// `cloudfs`: mount a small IaaS cloud as a file tree, or unmount it.
@main
struct CloudfsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cloudfs",
        abstract: "A small IaaS cloud (Nova + Glance in spirit) whose interface is a FUSE-mounted tree.",
        subcommands: [Mount.self, Unmount.self])
}

/// Where per-mountpoint pid files live, so `unmount` can wait for the daemon to finish.
enum PidFile {
    static let dir = "/run/cloudfs"
    static func path(for mountpoint: String) -> String {
        let key = mountpoint.replacingOccurrences(of: "/", with: "_")
        return "\(dir)/\(key).pid"
    }
}

/// Resolves a user-given path against the current directory and removes a trailing slash.
func absolutePath(_ p: String) -> String {
    var url = URL(fileURLWithPath: p)
    url.standardize()
    return url.path
}
