import ArgumentParser
import Foundation

/// `cloudfs`: mount a small IaaS cloud as a file tree, or unmount it.
@main
struct CloudfsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cloudfs",
        abstract: "A small IaaS cloud (Nova + Glance in spirit) whose interface is a FUSE-mounted tree.",
        subcommands: [Mount.self, Unmount.self, Console.self, DashboardCommand.self,
                      AgentCommand.self, AgentCredentialsCommand.self, MetadataServeCommand.self])
}

/// Where per-mountpoint records of the running daemon live (`PID` and `STATE` lines), so
/// `unmount` can wait for the daemon and find its state directory.
enum PidFile {
    static let dir = "/run/cloudfs"
    static func path(for mountpoint: String) -> String {
        let key = mountpoint.replacingOccurrences(of: "/", with: "_")
        return "\(dir)/\(key).pid"
    }

    static func write(mountpoint: String, stateDir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "\(getpid())\n\(stateDir)\n".write(toFile: path(for: mountpoint), atomically: true, encoding: .utf8)
    }

    /// The daemon recorded for `mountpoint`: its pid and state directory.
    static func read(mountpoint: String) -> (pid: Int32, stateDir: String?)? {
        guard let text = try? String(contentsOfFile: path(for: mountpoint), encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n").map(String.init)
        guard let pid = lines.first.flatMap({ Int32($0) }) else { return nil }
        return (pid, lines.count > 1 ? lines[1] : nil)
    }
}

/// Runs a command's body; a refusal (`StateLock.Busy`, `ValidationFailure`, an engine
/// error) is printed as `cloudfs: REASON` and exits 1, without ArgumentParser's usage text.
/// `alsoTell` gets the reason too (a daemon child tells its launching process).
func reportingFailures(alsoTell: ((String) -> Void)? = nil, _ body: () throws -> Void) throws {
    do { try body() } catch let exit as ExitCode { throw exit } catch {
        alsoTell?("\(error)")
        FileHandle.standardError.write(Data("cloudfs: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// Resolves a user-given path against the current directory and removes a trailing slash.
func absolutePath(_ p: String) -> String {
    var url = URL(fileURLWithPath: p)
    url.standardize()
    return url.path
}
