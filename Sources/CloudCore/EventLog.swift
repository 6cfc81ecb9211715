import Foundation
import Synchronization

/// The `/events` file: an append-only byte log, one line per event
/// (`TIMESTAMP KIND OBJECT key=value ...`). Readers address it by offset, so `tail -f`
/// sees a growing size; waiters are woken on every append (poll support).
public final class EventLog: Sendable {
    private struct State {
        var bytes: [UInt8] = []
        var waiters: [UInt64: @Sendable () -> Void] = [:]
        var nextWaiter: UInt64 = 0
        var sinks: [@Sendable (String) -> Void] = []
        var tagger: (@Sendable (String, String) -> String?)?
        var capturing: [UInt: [String]] = [:]   // thread → lines `capture` keeps aside

        /// Appends `lines` to the log and takes the waiters to wake (each wakes once).
        mutating func add(_ lines: [String]) -> [@Sendable () -> Void] {
            for l in lines { bytes.append(contentsOf: (l + "\n").utf8) }
            defer { waiters.removeAll() }
            return Array(waiters.values)
        }
    }
    private let state = Mutex(State())

    public init(history: [String] = []) {
        state.withLock { s in for line in history { s.bytes.append(contentsOf: (line + "\n").utf8) } }
    }

    /// Adds a persistence sink, called with every new line (the engine writes it to SQLite).
    public func addSink(_ sink: @escaping @Sendable (String) -> Void) {
        state.withLock { $0.sinks.append(sink) }
    }

    /// Sets what names the project an event is about (`KIND`, `OBJECT` → project), for
    /// events whose fields do not: the line gets `project=NAME`, which per-user views of
    /// the log filter on.
    public func setTagger(_ tagger: @escaping @Sendable (String, String) -> String?) {
        state.withLock { $0.tagger = tagger }
    }

    /// Formats and appends one event. Values containing spaces are quoted.
    @discardableResult
    public func append(kind: String, object: String, _ fields: KeyValuePairs<String, String> = [:],
                       at date: Date = Date()) -> String {
        var line = "\(Timestamp.string(date)) \(kind) \(object.isEmpty ? "-" : object)"
        for (k, v) in fields where k != "project" { line += " \(k)=\(EventLog.quote(v))" }
        // The project goes last, so no value before it can pose as it (`project(ofLine:)`).
        var project = fields.first(where: { $0.key == "project" })?.value
        if project == nil, let tagger = state.withLock({ $0.tagger }) { project = tagger(kind, object) }
        if let project, !project.isEmpty { line += " project=\(EventLog.quote(project))" }
        appendLine(line)
        return line
    }

    /// Runs `body` and returns the lines it appended on this thread, formatted as `append`
    /// formats them but not appended: the caller writes them with a transaction of its own
    /// and then hands them to `publish` (EngineCore.commit: a change and its event in one
    /// commit). Lines other threads append meanwhile are appended as usual.
    public func capture(_ body: () -> Void) -> [String] {
        let me = ThreadID.current
        let outer = state.withLock { s -> [String]? in
            defer { s.capturing[me] = [] }
            return s.capturing[me]
        }
        body()
        return state.withLock { s in
            defer { s.capturing[me] = outer }   // a capture inside another gives it back its lines
            return s.capturing[me] ?? []
        }
    }

    /// Appends lines already persisted (made by `capture`): readers and waiters see them,
    /// the persistence sinks are not called.
    public func publish(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        let waiters = state.withLock { s in s.add(lines) }
        for w in waiters { w() }
    }

    /// Appends a pre-formatted line.
    public func appendLine(_ line: String) {
        let clean = EventLog.oneLine(line)
        let me = ThreadID.current
        let (waiters, sinks) = state.withLock { s -> ([@Sendable () -> Void], [@Sendable (String) -> Void]) in
            if s.capturing[me] != nil {   // inside `capture` on this thread: kept aside
                s.capturing[me]!.append(clean)
                return ([], [])
            }
            return (s.add([clean]), s.sinks)
        }
        for sink in sinks { sink(clean) }
        for w in waiters { w() }
    }

    /// Current size in bytes.
    public var size: Int { state.withLock { $0.bytes.count } }

    /// Bytes `[offset, offset+count)`, clamped to the end.
    public func read(offset: Int, count: Int) -> [UInt8] {
        state.withLock { s in
            guard offset < s.bytes.count, offset >= 0 else { return [] }
            return Array(s.bytes[offset..<min(s.bytes.count, offset + count)])
        }
    }

    /// All lines (for tests and tools).
    public var lines: [String] {
        state.withLock { s in String(decoding: s.bytes, as: UTF8.self).split(separator: "\n").map(String.init) }
    }

    /// Calls `wake` once, at the next append. Returns an id for `cancelWait`.
    @discardableResult
    public func waitForAppend(_ wake: @escaping @Sendable () -> Void) -> UInt64 {
        state.withLock { s in
            s.nextWaiter += 1
            s.waiters[s.nextWaiter] = wake
            return s.nextWaiter
        }
    }

    public func cancelWait(_ id: UInt64) { _ = state.withLock { $0.waiters.removeValue(forKey: id) } }

    /// `text` with every line break (LF, CR) made a space, scalar by scalar: searching the
    /// String for "\n" compares Characters, and "\n" followed by a combining mark is one
    /// Character that does not match, so a name could split its event and forge the next.
    static func oneLine(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == 10 || $0 == 13 }) else { return text }
        var out = String.UnicodeScalarView()
        for u in text.unicodeScalars { out.append(u == "\n" || u == "\r" ? " " : u) }
        return String(out)
    }

    /// The project a line is about: its last field when that is `project=NAME` (where
    /// `append` puts it), else nil.
    public static func project(ofLine line: Substring) -> Substring? {
        guard let r = line.range(of: " project=", options: .backwards) else { return nil }
        let rest = line[r.upperBound...]
        return rest.contains(" ") ? nil : rest
    }

    static func quote(_ v: String) -> String {
        if v.isEmpty { return "\"\"" }
        if v.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) {
            return "\"" + String(v.map { $0 == "\"" ? "'" : $0 }) + "\""
        }
        return v
    }
}
