#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Hummingbird

/// The buttons: each is the file operation a shell user would type, and its outcome (the
/// errno and the cloud's reason when refused) is the notice of the page it returns to.
extension DashboardServer {
    func addActions(_ router: Router<BasicRequestContext>) {
        router.post("/instances/:name/action") { [self] request, context in
            let name = try context.parameters.require("name")
            let verb = try await Self.form(request)["verb"]
            // One form per row: each button names its verb; `delete` is the rmdir.
            if verb == "delete" {
                return Views.back(to: "/instances", await attempt("\(name): delete accepted") { tree throws(TreeError) in
                    try tree.rmdir("instances/\(name)")
                })
            }
            return Views.back(to: Self.returnPath(request, "/instances"), await attempt("\(name): \(verb) accepted") { tree throws(TreeError) in
                try tree.write("instances/\(name)/ctl", verb + "\n")
            })
        }
        router.post("/instances/:name/resize") { [self] request, context in
            let name = try context.parameters.require("name")
            let flavor = try await Self.form(request)["flavor"]
            return Views.back(to: Self.returnPath(request, "/instances"), await attempt("\(name): resize to \(flavor) accepted") { tree throws(TreeError) in
                try tree.write("instances/\(name)/flavor", flavor + "\n")
            })
        }
        router.post("/launch") { [self] request, _ in
            let form = try await Self.form(request)
            let outcome = await attempt { tree throws(TreeError) -> String in
                let files = try LaunchForm.launchFiles(form)
                // One atomic launch per instance: `cp FILE instances/NAME`.
                for f in files {
                    do throws(TreeError) { try tree.write("instances/\(f.name)", f.json, create: true, exclusive: true) } catch {
                        var e = error
                        if e.errno == EEXIST, e.reason == nil { e.reason = "an instance named '\(f.name)' already exists" }
                        throw e
                    }
                }
                return "launched " + files.map(\.name).joined(separator: ", ")
            }
            if case .failure = outcome { return Views.back(to: "/launch", outcome) }
            return Views.back(to: "/instances", outcome)
        }
        router.post("/images/delete") { [self] request, _ in
            let name = try await Self.form(request)["name"]
            return Views.back(to: "/images", await attempt("deleted image \(name)") { tree throws(TreeError) in try tree.remove("images/\(name)") })
        }
        router.post("/c/:slug/create") { [self] request, context in
            guard let spec = CollectionSpec.named(try context.parameters.require("slug")) else {
                return Views.text("no such page\n", status: .notFound)
            }
            let form = try await Self.form(request)
            return Views.back(to: "/c/\(spec.slug)", await attempt("created \(form["name"])") { tree throws(TreeError) in
                try Self.create(spec, form, tree)
            })
        }
        router.post("/c/:slug/delete") { [self] request, context in
            guard let spec = CollectionSpec.named(try context.parameters.require("slug")) else {
                return Views.text("no such page\n", status: .notFound)
            }
            let name = try await Self.form(request)["name"]
            return Views.back(to: "/c/\(spec.slug)", await attempt("deleted \(name)") { tree throws(TreeError) in
                if spec.memberIsFile { try tree.remove("\(spec.path)/\(name)") } else { try tree.rmdir("\(spec.path)/\(name)") }
            })
        }
    }

    /// A create: `mkdir` and a write per filled field; a refused write removes what the
    /// `mkdir` made, so a refusal leaves nothing half-made. A file member (a key pair) is
    /// the one write of its content.
    static func create(_ spec: CollectionSpec, _ form: FormBody, _ tree: MountedTree) throws(TreeError) {
        let name = form["name"]
        guard !name.isEmpty, !name.contains("/") else {
            throw TreeError(errno: EINVAL, operation: "mkdir", path: spec.path, reason: "give it a name (no '/')")
        }
        if spec.memberIsFile {
            try tree.write("\(spec.path)/\(name)", form.text(spec.create.first?.name ?? "content"), create: true)
            return
        }
        try tree.mkdir("\(spec.path)/\(name)")
        for field in spec.create {
            let value = field.multiline ? form.text(field.name) : form[field.name]
            if value.isEmpty { continue }
            do throws(TreeError) { try tree.write("\(spec.path)/\(name)/\(field.name)", value + (value.hasSuffix("\n") ? "" : "\n")) } catch {
                try? tree.rmdir("\(spec.path)/\(name)")
                throw error
            }
        }
    }

    /// Runs one tree operation off the server's threads; success says `done`.
    func attempt(_ done: String, _ body: @escaping @Sendable (MountedTree) throws(TreeError) -> Void) async -> Result<String, TreeError> {
        await attempt { tree throws(TreeError) in try body(tree); return done }
    }

    func attempt(_ body: @escaping @Sendable (MountedTree) throws(TreeError) -> String) async -> Result<String, TreeError> {
        await TreeQueue.attempt { [tree] () throws(TreeError) -> String in try body(tree) }
    }

    static func form(_ request: Request) async throws -> FormBody {
        var request = request
        let body = try await request.collectBody(upTo: 1 << 20)
        return FormBody(String(buffer: body))
    }

    /// Where a form came from (its Referer's path on this server), else `fallback`.
    static func returnPath(_ request: Request, _ fallback: String) -> String {
        guard let ref = request.headers[.referer], let url = URL(string: ref), !url.path.isEmpty else { return fallback }
        return url.path
    }
}
