import ArgumentParser
import CloudCore
import Foundation
import Logging
import MetadataServer

/// `cloudfs metadata-serve`: Nova's metadata API on one vxlan segment's local DHCP port,
/// started by the agent inside the port's namespace (`setsid -f nsenter --net=...`). It
/// answers from the documents the agent keeps in `--documents` (`IP.json`), writes its pid
/// file once it listens, and runs until killed.
struct MetadataServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metadata-serve",
        abstract: "Serve the metadata API of one segment from the agent's documents (run by cloudfs agent).")

    @Option(help: "Directory of IP.json metadata documents.")
    var documents: String

    @Option(help: "A.B.C.D:PORT to listen on.")
    var listen: String = "169.254.169.254:80"

    @Option(help: "Where to write the pid once listening.")
    var pidFile: String

    @Option(help: "Log file (stdout and stderr).")
    var log: String?

    func run() throws {
        // The agent's descriptors came along through nsenter (its state lock, its gRPC
        // socket): held here they would outlive the agent and block the next one.
        let inherited = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }
        for fd in inherited where fd > 2 { close(fd) }
        if let log {
            let fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            if fd >= 0 { dup2(fd, 1); dup2(fd, 2); close(fd) }
        }
        let (pidFile, listen) = (absolutePath(self.pidFile), self.listen)
        try reportingFailures {
            let (host, port) = try AgentAddress.split(listen)
            MetadataHTTPServer(source: FileMetadataSource(directory: absolutePath(documents)), host: host, port: port,
                               logger: Logger(label: "cloudfs.metadata")).start(listening: {
                let tmp = pidFile + ".tmp"
                if FileManager.default.createFile(atPath: tmp, contents: Data("\(getpid())\n".utf8)) { rename(tmp, pidFile) }
                FileHandle.standardOutput.write(Data("cloudfs metadata-serve listening on \(listen)\n".utf8))
            }, failed: { reason in
                FileHandle.standardError.write(Data("cloudfs: \(reason)\n".utf8))
                Foundation.exit(1)
            })
            dispatchMain()
        }
    }
}
