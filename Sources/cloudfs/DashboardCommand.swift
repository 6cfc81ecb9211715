import ArgumentParser
import Dashboard
import Foundation
import Logging

/// `cloudfs dashboard MOUNTPOINT [--listen HOST:PORT]`: Horizon in a browser, as a client
/// of a mounted tree. It prints a URL with a random access token (as Jupyter does) and
/// serves until interrupted, acting with the uid of whoever runs it.
struct DashboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Serve a web dashboard for a mounted cloud (loopback only unless told otherwise).")

    @Argument(help: "Where a cloudfs tree is mounted.")
    var mountpoint: String

    @Option(help: "HOST:PORT to listen on (port 0 picks a free one).")
    var listen = "127.0.0.1:8080"

    func run() throws {
        let mount = absolutePath(mountpoint)
        try reportingFailures {
            guard MountedTree.isCloudfsMount(mount) else {
                throw ValidationError("\(mount) is not a cloudfs mount (mount one with `cloudfs mount \(mount)`)")
            }
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
                throw ValidationError("--listen takes HOST:PORT, e.g. 127.0.0.1:8080")
            }
            var host = String(listen[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            var logger = Logger(label: "cloudfs.dashboard")
            logger.logLevel = .warning
            let server = try DashboardServer(mount: mount, host: host.isEmpty ? "127.0.0.1" : host, port: port, logger: logger)
            Task {
                do {
                    try await server.run { url in
                        FileHandle.standardOutput.write(Data("cloudfs dashboard for \(mount): \(url)\n".utf8))
                    }
                    Foundation.exit(0)
                } catch {
                    FileHandle.standardError.write(Data("cloudfs: the dashboard cannot serve on \(listen): \(error)\n".utf8))
                    Foundation.exit(1)
                }
            }
            dispatchMain()
        }
    }
}
