import CloudCore
import Hummingbird
import Logging
import NIOCore

/// The request context of the metadata service: where the request came from and which of
/// the host's addresses it reached (the network's gateway, after the DNAT of
/// 169.254.169.254:80).
struct MetadataRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let client: String?
    let local: String?
    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        client = source.channel.remoteAddress?.ipAddress
        local = source.channel.localAddress?.ipAddress
    }
}

/// Nova's metadata API over HTTP (nova/api/metadata/handler.py), as guests reach it at
/// http://169.254.169.254: the OpenStack tree (`/openstack`, `/openstack/latest/...`) and
/// the EC2 tree (`/latest/meta-data/...`, `/latest/user-data`, any dated version). Every
/// answer is the requesting guest's own: a client the cloud cannot place gets 404.
public final class MetadataHTTPServer: Sendable {
    let source: any MetadataSource
    let host: String
    let port: Int
    let logger: Logger

    public init(source: any MetadataSource, host: String = "0.0.0.0", port: Int, logger: Logger) {
        self.source = source; self.host = host; self.port = port; self.logger = logger
    }

    /// Serves until the process ends; a failure to listen is given to `failed`, `listening`
    /// is called once the socket is bound.
    public func start(listening: @escaping @Sendable () -> Void = {}, failed: @escaping @Sendable (String) -> Void) {
        let router = Router(context: MetadataRequestContext.self)
        router.get("**") { [source] request, context -> Response in
            guard let client = context.client, let local = context.local,
                  let doc = source.metadata(client: client, local: local) else {
                return Self.text("instance not found for \(context.client ?? "?")\n", status: .notFound)
            }
            return Self.answer(request.uri.path, doc)
        }
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "cloudfs-metadata"),
                              onServerRunning: { _ in listening() }, logger: logger)
        Task.detached {
            do { try await app.run() } catch { failed("the metadata service cannot serve on \(self.host):\(self.port): \(error)") }
        }
    }

    static let versions = ["2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06", "2017-02-22", "2018-08-27", "latest"]

    /// The answer to one path of `doc`.
    static func answer(_ path: String, _ doc: MetadataDocument) -> Response {
        let parts = path.split(separator: "/").map(String.init)
        if parts.isEmpty { return text("latest\n") }
        if parts[0] == "openstack" {
            if parts.count == 1 { return text(versions.joined(separator: "\n") + "\n") }
            guard versions.contains(parts[1]) else { return text("no such version\n", status: .notFound) }
            if parts.count == 2 { return text(doc.openstack.keys.sorted().joined(separator: "\n") + "\n") }
            guard parts.count == 3, let body = doc.openstack[parts[2]] else { return text("not found\n", status: .notFound) }
            return Response(status: .ok, headers: [.contentType: parts[2].hasSuffix(".json") ? "application/json" : "text/plain"],
                            body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        // EC2: /VERSION/meta-data/..., /VERSION/user-data
        if parts.count == 1 { return text("meta-data/\nuser-data\n") }
        switch parts[1] {
        case "user-data":
            return doc.userData.isEmpty ? text("no user data\n", status: .notFound) : text(doc.userData)
        case "meta-data":
            let key = parts.dropFirst(2).joined(separator: "/")
            if let leaf = doc.ec2[key] { return text(leaf) }
            let prefix = key.isEmpty ? "" : key + "/"
            var children: [String] = []
            for k in doc.ec2.keys.sorted() where k.hasPrefix(prefix) {
                let rest = k.dropFirst(prefix.count)
                let child = rest.split(separator: "/", maxSplits: 1)
                let name = String(child[0]) + (child.count > 1 ? "/" : "")
                if !children.contains(name) { children.append(name) }
            }
            return children.isEmpty ? text("not found\n", status: .notFound) : text(children.joined(separator: "\n"))
        default:
            return text("not found\n", status: .notFound)
        }
    }

    static func text(_ s: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: s)))
    }
}
