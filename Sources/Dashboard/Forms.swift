import Foundation

/// An `application/x-www-form-urlencoded` body (what an HTML form posts).
struct FormBody: Sendable {
    private(set) var values: [String: [String]] = [:]

    init(_ body: String) {
        for pair in body.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = Self.decode(kv[0]), value = kv.count > 1 ? Self.decode(kv[1]) : ""
            values[key, default: []].append(value)
        }
    }

    static func decode(_ s: Substring) -> String {
        String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s)
    }

    /// The field's value with surrounding blanks removed ("" when absent).
    subscript(_ key: String) -> String {
        (values[key]?.first ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Every value of a repeated field (a multiple select), blanks dropped.
    func all(_ key: String) -> [String] {
        (values[key] ?? []).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// A field as typed, line ends normalised (user data, rules, public keys).
    func text(_ key: String) -> String {
        (values[key]?.first ?? "").replacingOccurrences(of: "\r\n", with: "\n")
    }
}

/// Runs blocking tree calls (FUSE requests) off Swift's cooperative threads, so a slow
/// answer from the cloud never stalls the server's other requests or its event streams.
enum TreeQueue {
    static let queue = DispatchQueue(label: "cloudfs.dashboard.tree", attributes: .concurrent)

    static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in queue.async { c.resume(returning: body()) } }
    }

    /// A tree operation that the tree may refuse: its value or the refusal.
    static func attempt<T: Sendable>(_ body: @escaping @Sendable () throws(TreeError) -> T) async -> Result<T, TreeError> {
        await withCheckedContinuation { c in queue.async { c.resume(returning: Result(catching: body)) } }
    }
}
