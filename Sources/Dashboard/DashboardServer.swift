import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Horizon for cloudfs: a web dashboard that is a pure client of a mounted tree. Every
/// page is made of `ls`/`cat`-style reads of the mount and every button is a `mkdir`, a
/// write to `ctl` or an `rmdir` on it, done with the uid of whoever runs the dashboard —
/// so it shows each user what the tree shows them and can do nothing they could not.
public final class DashboardServer: Sendable {
    let tree: MountedTree
    let tokens: AccessTokens
    let views: Views
    let events: EventFollower
    let host: String
    let port: Int
    let logger: Logger

    public init(mount: String, host: String = "127.0.0.1", port: Int = 8080, logger: Logger) throws {
        tree = MountedTree(root: mount)
        tokens = AccessTokens()
        views = try Views(mount: mount, csrf: tokens.csrf)
        events = EventFollower(tree: tree)
        self.host = host; self.port = port; self.logger = logger
    }

    /// The address to open, with the access token (printed once the port is bound).
    public func url(port: Int) -> String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "http://\(h):\(port)/?token=\(tokens.access)"
    }

    /// Serves until the process ends; `ready` gets the URL once the socket listens.
    public func run(ready: @escaping @Sendable (String) -> Void) async throws {
        let router = Router()
        router.add(middleware: AccessMiddleware(tokens: tokens))
        addPages(router)
        addActions(router)
        addStreams(router)
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "cloudfs-dashboard"),
                              onServerRunning: { [self] channel in ready(url(port: channel.localAddress?.port ?? port)) },
                              logger: logger)
        try await app.runService()
    }

    func addPages(_ router: Router<BasicRequestContext>) {
        router.get("/static/style.css") { _, _ in Views.text(LayoutTemplates.style, type: "text/css; charset=utf-8") }
        router.get("/static/app.js") { _, _ in Views.text(Script.app, type: "text/javascript; charset=utf-8") }
        router.get("/") { [self] request, _ in
            let overview = await TreeQueue.run { [tree] in Overview.load(tree: tree) }
            var values: [String: Any] = ["projects": overview.projects, "hosts": overview.hosts, "instanceCount": overview.instanceCount]
            if let problem = overview.hostsProblem { values["hostsProblem"] = problem }   // a key only when there is one
            return views.page("overview", title: "Overview", request, values)
        }
        router.get("/instances") { [self] request, _ in
            let rows = await TreeQueue.run { [tree, views] in Self.instanceRows(tree, csrf: views.csrf) }
            return views.page("instances", title: "Instances", request, ["rows": rows, "count": rows.count])
        }
        router.get("/instances/:name") { [self] request, context in
            let name = try context.parameters.require("name")
            switch await TreeQueue.attempt({ [tree] () throws(TreeError) -> InstanceDetail in try InstanceDetail.load(name, tree: tree) }) {
            case .success(let d):
                var row = d.row
                row.csrf = views.csrf
                var values: [String: Any] = ["row": row, "name": name, "fields": d.fields, "console": d.console,
                                             "actionLog": d.actionLog, "events": d.events, "volumes": d.volumes]
                if let decision = d.decision { values["decision"] = decision }
                return views.page("instance", title: "Instance " + name, request, values)
            case .failure(let e):
                return problem(request, e, status: e.errno == ENOENT ? .notFound : .forbidden)
            }
        }
        router.get("/instances/:name/row") { [self] _, context in
            let name = try context.parameters.require("name")
            let row = await TreeQueue.run { [tree] in Self.instanceRow(tree, name, flavors: (try? tree.list("flavors")) ?? []) }
            guard let row else { return Views.text("no instance named \(name)\n", status: .notFound) }
            return views.row(row)
        }
        router.get("/launch") { [self] request, _ in
            let form = await TreeQueue.run { [tree] in LaunchForm.load(tree: tree) }
            return views.page("launch", title: "Launch instance", request, ["form": form])
        }
        router.get("/images") { [self] request, _ in
            let table = await TreeQueue.run { [tree] in CollectionTable.load(Self.imagesSpec, tree: tree) }
            return views.page("images", title: "Images", request, ["rows": table.rows, "columns": Self.imagesSpec.columns])
        }
        router.get("/c/:slug") { [self] request, context in
            guard let spec = CollectionSpec.named(try context.parameters.require("slug")) else {
                return Views.text("no such page\n", status: .notFound)
            }
            let table = await TreeQueue.run { [tree] in CollectionTable.load(spec, tree: tree) }
            return views.page("collection", title: spec.title, request, ["table": table, "slug": spec.slug, "fields": spec.create,
                "nameHint": spec.nameHint, "columns": spec.columns])
        }
        router.get("/events") { [self] request, _ in
            let lines = await TreeQueue.run { [tree] in RefusalLog(tree: tree).tail(bytes: 128 * 1024).suffix(300).reversed().map { $0 } }
            return views.page("events", title: "Events", request, ["lines": lines])
        }
    }

    static let imagesSpec = CollectionSpec("images", "Images", concept: "Glance images", records: "images.d",
        columns: ["status", "format", "size", "virtual_size", "visibility", "created"], memberIsFile: true)

    /// Every instance's row, from its info.json (one read each), in name order; rows that
    /// vanish between the listing and the read are left out.
    static func instanceRows(_ tree: MountedTree, csrf: String) -> [InstanceRow] {
        let flavors = (try? tree.list("flavors")) ?? []
        let names = (try? tree.list("instances")) ?? []
        let now = Date()
        // Read on a few threads at once: the FUSE daemon answers requests in parallel.
        let rows = Mutex([InstanceRow?](repeating: nil, count: names.count))
        let workers = min(4, max(1, names.count))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for i in stride(from: w, to: names.count, by: workers) {
                guard var row = instanceRow(tree, names[i], flavors: flavors, now: now) else { continue }
                row.csrf = csrf
                rows.withLock { $0[i] = row }
            }
        }
        return rows.withLock { $0.compactMap { $0 } }
    }

    /// One instance's row from its info.json; nil when it is gone or unreadable.
    static func instanceRow(_ tree: MountedTree, _ name: String, flavors: [String], now: Date = Date()) -> InstanceRow? {
        (try? tree.readBytes("instances/\(name)/info.json")).flatMap { InstanceRow(json: $0, flavors: flavors, now: now) }
    }

    func problem(_ request: Request, _ e: TreeError, status: HTTPResponse.Status) -> Response {
        var r = views.page("problem", title: "Not available", request, ["message": e.description])
        r.status = status
        return r
    }
}
