#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Hummingbird
import NIOCore

/// The long-lived requests: server-sent events from `/events` and from an instance's
/// console log, and the image upload streamed into `/images/NAME`.
extension DashboardServer {
    func addStreams(_ router: Router<BasicRequestContext>) {
        router.get("/sse/events") { [events] _, _ in
            let lines = events.subscribe()
            return Response(status: .ok, headers: Self.sseHeaders, body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: ": following /events\n\n"))
                for await line in lines {
                    try await writer.write(ByteBuffer(string: line.isEmpty ? ": ping\n\n" : "data: \(line)\n\n"))
                }
                try await writer.finish(nil)
            })
        }
        router.get("/sse/console/:name") { [tree] _, context in
            let path = "instances/\(try context.parameters.require("name"))/console"
            return Response(status: .ok, headers: Self.sseHeaders, body: ResponseBody { writer in
                // From the end the page already shows, then whatever the guest prints next.
                var offset = await TreeQueue.run { tree.size(path) }
                var partial = ""
                var idle = 0
                while true {
                    let from = offset
                    let chunk = await TreeQueue.run { tree.bytes(path, from: from) }
                    if chunk.isEmpty {
                        idle += 1
                        if idle % 30 == 0 { try await writer.write(ByteBuffer(string: ": ping\n\n")) }
                        try await Task.sleep(for: .milliseconds(500))
                        continue
                    }
                    offset += chunk.count
                    partial += String(decoding: chunk, as: UTF8.self)
                    var lines = partial.split(separator: "\n", omittingEmptySubsequences: false)
                    partial = String(lines.removeLast())
                    if !lines.isEmpty {
                        try await writer.write(ByteBuffer(string: lines.map { "data: \($0)\n" }.joined(separator: "") + "\n"))
                    }
                }
            })
        }
        router.put("/images/upload/:name") { [tree] request, context in
            let name = try context.parameters.require("name")
            let expected = request.headers[.contentLength].flatMap { Int($0) }
            let path = "images/\(name)"
            let fd: Int32
            switch await TreeQueue.attempt({ () throws(TreeError) -> Int32 in try tree.openForWriting(path) }) {
            case .success(let opened): fd = opened
            case .failure(let e): return Views.text(e.description + "\n", status: .badRequest)
            }
            var written = 0
            var failure: TreeError?
            do {
                for try await buffer in request.body {
                    let bytes = Array(buffer.readableBytesView)
                    try await TreeQueue.attempt { () throws(TreeError) in try tree.writeAll(fd, bytes, path) }.get()
                    written += bytes.count
                }
            } catch let e as TreeError { failure = e } catch {
                failure = TreeError(errno: EIO, operation: "upload", path: path, reason: "the upload was interrupted: \(error)")
            }
            if failure == nil, let expected, expected != written {
                failure = TreeError(errno: EIO, operation: "upload", path: path, reason: "the upload ended after \(written) of \(expected) bytes")
            }
            let closed = await TreeQueue.runClose(fd, tree, path)
            if failure == nil { failure = closed }
            if let failure {
                // An interrupted or refused upload leaves no image behind.
                if failure.operation == "upload" || failure.operation == "write" { await TreeQueue.run { try? tree.remove(path) } }
                return Views.text(failure.description + "\n", status: failure.errno == EACCES || failure.errno == EPERM ? .forbidden : .badRequest)
            }
            return Views.text("uploaded \(name): \(written) bytes, \(tree.value("images.d/\(name)/status"))")
        }
    }

    static let sseHeaders: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
}

extension MountedTree {
    /// The file's size as the tree reports it (0 when it cannot be read).
    func size(_ rel: String) -> Int {
        var st = stat()
        return stat(path(rel), &st) == 0 ? Int(st.st_size) : 0
    }

    /// The bytes from `offset` to the end, at most 1 MiB ([] when none, or the file is gone).
    func bytes(_ rel: String, from offset: Int) -> [UInt8] {
        let fd = open(path(rel), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        return Self.pread(fd, from: offset, limit: 1 << 20) ?? []
    }
}

extension TreeQueue {
    /// Closes an upload's descriptor; the close's error is the tree's verdict on the image.
    static func runClose(_ fd: Int32, _ tree: MountedTree, _ rel: String) async -> TreeError? {
        await run { () -> TreeError? in close(fd) == 0 ? nil : tree.failure("close", rel) }
    }
}
