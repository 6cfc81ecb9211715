#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One line of `/events` (SPEC "/events"): `TIMESTAMP KIND OBJECT key=value ...`, values
/// with blanks in double quotes (the log never puts a `"` inside one).
public struct EventLine: Sendable, Equatable {
    public var time: String
    public var kind: String
    public var object: String
    public var fields: [(String, String)]
    public var text: String

    public static func == (a: EventLine, b: EventLine) -> Bool { a.text == b.text }

    public init?(_ line: String) {
        let tokens = EventLine.tokens(line)
        guard tokens.count >= 3 else { return nil }
        text = line; time = tokens[0]; kind = tokens[1]; object = tokens[2]
        fields = tokens.dropFirst(3).compactMap { t in
            guard let eq = t.firstIndex(of: "=") else { return nil }
            return (String(t[..<eq]), String(t[t.index(after: eq)...]))
        }
    }

    public func field(_ key: String) -> String? { fields.first { $0.0 == key }?.1 }

    /// The instance a line is about (`instance.*` kinds name it as their object).
    public var instance: String? { kind.hasPrefix("instance.") ? object : nil }

    /// Blank-separated tokens; a `"…"` value keeps its blanks and loses its quotes.
    static func tokens(_ line: String) -> [String] {
        var out: [String] = [], cur = "", quoted = false
        for ch in line {
            if ch == "\"" { quoted.toggle(); continue }
            if ch == " " && !quoted { if !cur.isEmpty { out.append(cur); cur = "" }; continue }
            cur.append(ch)
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }
}

/// Finds why the tree refused one of this process's requests: the cloud writes each
/// refusal to `/events` with the caller's pid and a `reason`, so the dashboard shows the
/// same words a shell user reads with `tail /events`.
struct RefusalLog {
    let tree: MountedTree

    /// The newest refusal of a request made by the calling thread (FUSE names the
    /// thread's id as the caller's pid) about `object` (a path; any of its components may
    /// be the line's object), else that thread's newest refusal of any kind.
    func reason(object rel: String) -> String? {
        let lines = tail(bytes: 256 * 1024)
        let caller = Self.threadID()
        let names = Set(rel.split(separator: "/").map(String.init) + [rel, "/" + rel])
        var fallback: String?
        for line in lines.suffix(400).reversed() {
            guard let e = EventLine(line), e.field("pid") == caller, let reason = e.field("reason") else { continue }
            if names.contains(e.object) { return reason }
            if fallback == nil { fallback = reason }
        }
        return fallback
    }

    /// The calling thread's id (`/proc/thread-self` is `PID/task/TID`).
    static func threadID() -> String {
        let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? ""
        return link.split(separator: "/").last.map(String.init) ?? "\(getpid())"
    }

    /// The last lines of `/events`, read from near its end (it is a file of true size).
    func tail(bytes: Int) -> [String] {
        let fd = open(tree.path("events"), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return [] }
        let start = max(0, Int(st.st_size) - bytes)
        let tail = MountedTree.pread(fd, from: start) ?? []
        var lines = String(decoding: tail, as: UTF8.self).split(separator: "\n").map(String.init)
        if start > 0, !lines.isEmpty { lines.removeFirst() }   // a partial first line
        return lines
    }
}
