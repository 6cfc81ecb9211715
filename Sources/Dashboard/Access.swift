import Foundation
import Hummingbird

/// Who may use the dashboard: whoever holds the access token printed at start (as
/// Jupyter does), kept afterwards in an HttpOnly SameSite=Strict cookie; every
/// state-changing request also carries the page's CSRF token (`?csrf=` in a form's action,
/// or the `X-CSRF-Token` header of a script's request). What a user may then do is what the tree lets the dashboard's uid do.
struct AccessTokens: Sendable {
    let access: String
    let csrf: String
    static let cookie = "cloudfs_dashboard"

    init(access: String = AccessTokens.random(), csrf: String = AccessTokens.random()) {
        self.access = access; self.csrf = csrf
    }

    /// 32 random bytes as hex, from the system's generator.
    static func random() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }

    /// Constant-time comparison, so a wrong guess takes as long however much of it matched.
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in x.indices { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}

/// Checks the access token on every request and the CSRF token on every POST and PUT.
struct AccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let tokens: AccessTokens

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let given = request.uri.queryParameters["token"].map(String.init) {
            guard AccessTokens.same(given, tokens.access) else { return Self.denied() }
            // Trade the token in the URL for the cookie and drop it from the address bar.
            var response = Response(status: .seeOther, headers: [.location: request.uri.path])
            response.setCookie(.init(name: AccessTokens.cookie, value: tokens.access, path: "/", secure: false,
                                     httpOnly: true, sameSite: .strict))
            return response
        }
        guard let cookie = request.cookies[AccessTokens.cookie]?.value, AccessTokens.same(cookie, tokens.access) else {
            return Self.denied()
        }
        if request.method == .post || request.method == .put || request.method == .delete {
            let header = request.headers.first { $0.name.canonicalName == "x-csrf-token" }?.value
            let field = request.uri.queryParameters["csrf"].map(String.init)
            guard let token = header ?? field, AccessTokens.same(token, tokens.csrf) else {
                return Response(status: .forbidden, headers: [.contentType: "text/plain; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: "missing or wrong CSRF token: reload the page and try again\n")))
            }
        }
        return try await next(request, context)
    }

    static func denied() -> Response {
        Response(status: .unauthorized, headers: [.contentType: "text/plain; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: "401: open the URL with the access token that `cloudfs dashboard` printed\n")))
    }
}
