import Foundation
import Hummingbird
import Mustache

/// Renders the pages: one mustache library holding every template, and the frame values
/// each page shares (title, CSRF token, navigation, the notice of the last action).
struct Views: Sendable {
    let library: MustacheLibrary
    let mount: String
    let csrf: String

    init(mount: String, csrf: String) throws {
        let templates: [String: String] = [
            "header": LayoutTemplates.header, "footer": LayoutTemplates.footer,
            "row": InstanceTemplates.row, "rowOnly": "{{> row}}",
            "instances": InstanceTemplates.list, "instance": InstanceTemplates.detail,
            "overview": PageTemplates.overview, "launch": PageTemplates.launch,
            "collection": PageTemplates.collection, "images": PageTemplates.images,
            "events": PageTemplates.events, "problem": PageTemplates.problem,
        ]
        var library = MustacheLibrary()
        for (name, text) in templates { try library.register(text, named: name) }
        self.library = library; self.mount = mount; self.csrf = csrf
    }

    struct Notice { let text: String; let level: String }
    struct NavItem { let slug: String; let title: String }
    static let nav = CollectionSpec.all.map { NavItem(slug: $0.slug, title: $0.title) }

    /// A whole page: `values` on top of the shared frame.
    func page(_ template: String, title: String, _ request: Request, _ values: [String: Any] = [:]) -> Response {
        var ctx: [String: Any] = ["title": title, "csrf": csrf, "page": template, "mount": mount, "collections": Self.nav,
                                   "uid": Int(getuid())]
        if let text = request.uri.queryParameters["notice"].map(String.init), !text.isEmpty {
            let level = request.uri.queryParameters["level"].map(String.init) == "ok" ? "ok" : "bad"
            ctx["notice"] = Notice(text: text, level: level)
        }
        for (k, v) in values { ctx[k] = v }
        return Self.html(library.render(ctx, withTemplate: template) ?? "")
    }

    /// One instance row, for the live refresh.
    func row(_ row: InstanceRow) -> Response {
        var r = row
        r.csrf = csrf
        return Self.html(library.render(r, withTemplate: "rowOnly") ?? "")
    }

    static func html(_ s: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: s)))
    }

    static func text(_ s: String, status: HTTPResponse.Status = .ok, type: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: s)))
    }

    /// After a form's POST: back to `to` with the outcome as the page's notice (the
    /// tree's errno and reason when it refused).
    static func back(to: String, _ outcome: Result<String, TreeError>) -> Response {
        var c = URLComponents()
        c.path = to
        switch outcome {
        case .success(let text): c.queryItems = [.init(name: "level", value: "ok"), .init(name: "notice", value: text)]
        case .failure(let e): c.queryItems = [.init(name: "level", value: "bad"), .init(name: "notice", value: e.description)]
        }
        return Response(status: .seeOther, headers: [.location: c.string ?? to])
    }
}
