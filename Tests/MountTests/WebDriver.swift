// The client side of the W3C WebDriver protocol (https://www.w3.org/TR/webdriver2/), with
// chromedriver as the driver and headless Chromium as the browser. Foundation only; every call
// is synchronous so XCTest tests read top to bottom.
//
// Transport: plain HTTP/1.1 over a loopback TCP socket, not URLSession. chromedriver writes
// header lines without a space after the colon ("Content-Length:252"), which the libcurl-based
// URLSession on Linux rejects with "Failed writing header" (swift-corelibs-foundation#4965).
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An error from the driver, the browser, or this client; `description` carries the WebDriver message.
struct WebDriverError: Error, CustomStringConvertible, LocalizedError {
    let description: String
    init(_ description: String) { self.description = description }
    var errorDescription: String? { description }
}

/// Synchronous JSON-over-HTTP transport shared by the driver and its sessions (IPv4 loopback only).
enum WebDriverHTTP {
    /// A TCP socket and a sockaddr for `host:port` (host is an IPv4 literal or "localhost").
    static func socketAndAddress(host: String, port: Int) throws -> (Int32, sockaddr_in) {
        #if os(Linux)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, socklen_t(MemoryLayout<Int32>.size))
        #endif
        guard fd >= 0 else { throw WebDriverError("socket() failed: errno \(errno)") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr(host == "localhost" ? "127.0.0.1" : host)
        return (fd, addr)
    }

    /// Sends one WebDriver command and returns the response's `value` (nil for JSON null).
    static func call(_ method: String, _ url: URL, _ body: Any? = nil, timeout: TimeInterval = 30) throws -> Any? {
        let what = "\(method) \(url.path)"
        let payload = method == "POST" ? try JSONSerialization.data(withJSONObject: body ?? [String: Any]()) : Data()
        var (fd, addr) = try socketAndAddress(host: url.host ?? "127.0.0.1", port: url.port ?? 80)
        defer { close(fd) }
        var tv = timeval(tv_sec: max(1, Int(timeout.rounded(.up))), tv_usec: 0)  // 0 would mean "never"
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw WebDriverError("\(what): cannot connect to \(url.host ?? ""):\(url.port ?? 80) (errno \(errno))") }
        let head = "\(method) \(url.path) HTTP/1.1\r\nHost: \(url.host ?? ""):\(url.port ?? 80)\r\nConnection: close\r\n"
            + "Content-Type: application/json; charset=utf-8\r\nContent-Length: \(payload.count)\r\n\r\n"
        let request = Data(head.utf8) + payload
        #if os(Linux)
        let flags = Int32(MSG_NOSIGNAL)
        #else
        let flags: Int32 = 0
        #endif
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, request.count - sent, flags) }
            guard n > 0 else { throw WebDriverError("\(what): send failed (errno \(errno))") }
            sent += n
        }
        // Read until Content-Length is satisfied (or EOF, since we asked for Connection: close).
        var raw = Data(), buffer = [UInt8](repeating: 0, count: 65536)
        var headerEnd: Int?, expected: Int?
        while expected.map({ raw.count < $0 }) ?? true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw WebDriverError("\(what): no answer within \(Int(timeout)) s (errno \(errno))")
            }
            raw.append(contentsOf: buffer[0..<n])
            if headerEnd == nil, let r = raw.range(of: Data("\r\n\r\n".utf8)) {
                headerEnd = r.upperBound
                let fields = String(decoding: raw[..<r.lowerBound], as: UTF8.self).lowercased().components(separatedBy: "\r\n")
                if let line = fields.first(where: { $0.hasPrefix("content-length:") }),
                   let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) {
                    expected = r.upperBound + length
                }
            }
        }
        guard let bodyStart = headerEnd,
              let status = Int(String(decoding: raw.prefix(32), as: UTF8.self).split(separator: " ").dropFirst().first ?? "") else {
            throw WebDriverError("\(what): malformed HTTP response")
        }
        let json = try? JSONSerialization.jsonObject(with: raw[bodyStart...], options: [.fragmentsAllowed])
        let value = (json as? [String: Any])?["value"]
        if status != 200 {
            let info = value as? [String: Any]
            let kind = info?["error"] as? String ?? "HTTP \(status)", message = info?["message"] as? String ?? ""
            throw WebDriverError("\(what): " + (message.hasPrefix(kind) ? message : "\(kind): \(message)"))
        }
        return value is NSNull ? nil : value
    }
}

/// A chromedriver process listening on a free loopback port; terminated by `stop()` or deinit.
final class ChromeDriver: @unchecked Sendable {
    let baseURL: URL
    /// Parent of the sessions' browser profiles; removed by `stop()`.
    let scratchDir = FileManager.default.temporaryDirectory.appendingPathComponent("webdriver-\(UUID().uuidString)")
    private let process: Process

    /// The chromedriver executable found on PATH, if any.
    static func executable() -> URL? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/usr/local/bin").split(separator: ":")
        return dirs.map { URL(fileURLWithPath: String($0)).appendingPathComponent("chromedriver") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// Whether chromedriver is installed; tests use `try XCTSkipUnless(ChromeDriver.available(), ...)`.
    static func available() -> Bool { executable() != nil }

    /// Starts chromedriver and waits (up to `timeout`) until `GET /status` reports ready.
    init(timeout: TimeInterval = 20) throws {
        guard let exe = Self.executable() else { throw WebDriverError("chromedriver not installed (not on PATH)") }
        var lastError = ""
        for _ in 0..<3 {  // another process may take the port between probe and launch: retry
            let port = try Self.freePort()
            let proc = Process()
            proc.executableURL = exe
            proc.arguments = ["--port=\(port)"]
            proc.standardOutput = FileHandle.nullDevice
            proc.standardError = FileHandle.nullDevice
            try proc.run()
            let url = URL(string: "http://127.0.0.1:\(port)")!
            let deadline = Date().addingTimeInterval(timeout)
            while proc.isRunning && Date() < deadline {
                if let status = try? WebDriverHTTP.call("GET", url.appendingPathComponent("status"), timeout: 2),
                   (status as? [String: Any])?["ready"] as? Bool == true {
                    (process, baseURL) = (proc, url)
                    return
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
            lastError = proc.isRunning ? "not ready within \(Int(timeout)) s" : "exited with status \(proc.terminationStatus)"
            if proc.isRunning { proc.terminate(); proc.waitUntilExit() }
        }
        throw WebDriverError("chromedriver failed to start: \(lastError)")
    }

    deinit { stop() }

    /// Stops chromedriver (idempotent). Uses its `/shutdown` command, which also closes every
    /// browser it started (a plain SIGTERM would leave Chromium running), then SIGTERM as a fallback.
    func stop() {
        if process.isRunning {
            _ = try? WebDriverHTTP.call("GET", baseURL.appendingPathComponent("shutdown"), timeout: 10)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: scratchDir)
    }

    /// Opens a headless Chromium session with a private, throw-away profile.
    func newSession(windowSize: (Int, Int) = (1280, 900)) throws -> BrowserSession {
        try BrowserSession(driver: self, windowSize: windowSize)
    }

    /// An unused TCP port on 127.0.0.1, found by binding port 0 and asking the kernel which it chose.
    private static func freePort() throws -> Int {
        var (fd, addr) = try WebDriverHTTP.socketAndAddress(host: "127.0.0.1", port: 0)
        defer { close(fd) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw WebDriverError("could not bind a loopback port: errno \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

/// One WebDriver session (one browser); `quit()` or deinit closes it and deletes its profile.
/// Keeps its `ChromeDriver` alive.
final class BrowserSession: @unchecked Sendable {
    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"  // the W3C web element identifier
    let driver: ChromeDriver
    let id: String
    private let profileDir: URL
    private var closed = false

    fileprivate init(driver: ChromeDriver, windowSize: (Int, Int)) throws {
        self.driver = driver
        profileDir = driver.scratchDir.appendingPathComponent("profile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: profileDir, withIntermediateDirectories: true)
        var options: [String: Any] = ["args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=\(windowSize.0),\(windowSize.1)", "--user-data-dir=\(profileDir.path)"]]
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") { options["binary"] = "/usr/bin/chromium" }
        let caps = ["capabilities": ["alwaysMatch": ["browserName": "chrome", "goog:chromeOptions": options]]]
        do {
            let value = try WebDriverHTTP.call("POST", driver.baseURL.appendingPathComponent("session"), caps, timeout: 60)
            guard let id = (value as? [String: Any])?["sessionId"] as? String else { throw WebDriverError("no sessionId") }
            self.id = id
        } catch {
            try? FileManager.default.removeItem(at: profileDir)
            throw WebDriverError("could not create a browser session: \(error)")
        }
    }

    deinit { quit() }

    /// Sends a command relative to `/session/{id}` and returns its `value`.
    @discardableResult
    func command(_ method: String, _ path: String, _ body: Any? = nil) throws -> Any? {
        try WebDriverHTTP.call(method, driver.baseURL.appendingPathComponent("session/\(id)" + (path.isEmpty ? "" : "/\(path)")), body)
    }

    func navigate(to url: String) throws {
        do { try command("POST", "url", ["url": url]) } catch {
            throw WebDriverError("navigating to \(url): \(error)")
        }
    }
    func currentURL() throws -> String { try command("GET", "url") as? String ?? "" }
    func title() throws -> String { try command("GET", "title") as? String ?? "" }
    func pageSource() throws -> String { try command("GET", "source") as? String ?? "" }

    /// The first element matching `css`; throws "no such element" if none.
    func findElement(css: String) throws -> Element {
        try element(command("POST", "element", ["using": "css selector", "value": css])) ?? { throw WebDriverError("bad reference for \(css)") }()
    }

    /// All elements matching `css` (possibly none).
    func findElements(css: String) throws -> [Element] {
        (try command("POST", "elements", ["using": "css selector", "value": css]) as? [Any] ?? []).compactMap(element)
    }

    private func element(_ value: Any?) -> Element? {
        ((value as? [String: Any])?[Self.elementKey] as? String).map { Element(session: self, id: $0) }
    }

    /// Runs `script` as a function body (`arguments[i]` are `args`; an `Element` is passed as the DOM node).
    /// Returns the JSON result: a returned DOM node comes back as `Element`, null/undefined as nil.
    @discardableResult
    func executeScript(_ script: String, args: [Any] = []) throws -> Any? {
        let wire = args.map { ($0 as? Element).map { [Self.elementKey: $0.id] as Any } ?? $0 }
        let value = try command("POST", "execute/sync", ["script": script, "args": wire])
        return element(value) ?? value
    }

    /// Sets a `<select>`'s value and fires `input` and `change`; throws if no option has that value.
    func selectOption(css selectCSS: String, value: String) throws {
        let ok = try executeScript("""
            const s = arguments[0];
            if (![...s.options].some(o => o.value === arguments[1])) return false;
            s.value = arguments[1];
            s.dispatchEvent(new Event('input', {bubbles: true})); s.dispatchEvent(new Event('change', {bubbles: true}));
            return true;
            """, args: [findElement(css: selectCSS), value]) as? Bool
        if ok != true { throw WebDriverError("\(selectCSS) has no option with value \(value)") }
    }

    /// Polls `condition` until it returns true; a throwing condition counts as "not yet".
    /// After `timeout` seconds throws an error naming `what` and the last error seen.
    func waitFor(_ what: String, timeout: TimeInterval = 15, poll: TimeInterval = 0.1, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var lastError: Error?
        while true {
            do { if try condition() { return } } catch { lastError = error }
            if Date() >= deadline {
                throw WebDriverError("timed out after \(timeout) s waiting for \(what)" + (lastError.map { " (last error: \($0))" } ?? ""))
            }
            Thread.sleep(forTimeInterval: poll)
        }
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    func screenshot(to path: String) throws {
        guard let b64 = try command("GET", "screenshot") as? String, let png = Data(base64Encoded: b64) else {
            throw WebDriverError("screenshot: driver returned no image")
        }
        try png.write(to: URL(fileURLWithPath: path))
    }

    /// The text of the open alert/confirm/prompt, or nil if none is open.
    func alertText() throws -> String? {
        do { return try command("GET", "alert/text") as? String } catch let e as WebDriverError where e.description.contains("no such alert") { return nil }
    }

    func acceptAlert() throws { try command("POST", "alert/accept") }
    func dismissAlert() throws { try command("POST", "alert/dismiss") }

    /// Ends the session (closing Chromium) and removes the profile directory; idempotent.
    func quit() {
        guard !closed else { return }
        closed = true
        _ = try? command("DELETE", "")
        try? FileManager.default.removeItem(at: profileDir)
    }
}

/// A reference to a DOM element inside a session.
struct Element: Sendable {
    let session: BrowserSession
    let id: String

    @discardableResult
    private func command(_ method: String, _ path: String, _ body: Any? = nil) throws -> Any? {
        try session.command(method, "element/\(id)/\(path)", body)
    }

    func click() throws { try command("POST", "click") }
    func clear() throws { try command("POST", "clear") }
    /// Types `text`; for `<input type=file>` pass a local file path.
    func sendKeys(_ text: String) throws { try command("POST", "value", ["text": text]) }
    func text() throws -> String { try command("GET", "text") as? String ?? "" }
    var isDisplayed: Bool { get throws { try command("GET", "displayed") as? Bool ?? false } }

    /// The DOM property `name` (e.g. the live `value`), else the HTML attribute; booleans as "true"/"false".
    func attribute(_ name: String) throws -> String? {
        switch try command("GET", "property/\(name)") ?? command("GET", "attribute/\(name)") {
        case nil: return nil
        case let s as String: return s
        case let n as NSNumber where String(cString: n.objCType) == "c": return n.boolValue ? "true" : "false"
        case let v?: return "\(v)"
        }
    }
}
