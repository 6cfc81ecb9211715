import CloudCore
import Foundation
import Synchronization

/// `/events` as each user sees it: only the lines about projects they belong to (their
/// last field is `project=NAME`, see `EventLog.append`). The admin reads the whole log.
/// A user's view is built from the log the first time they read it, then grows with
/// every line about one of their projects at the time it is appended; a user added to a
/// project sees its events from then on.
final class EventViews: Sendable {
    private let log: EventLog
    /// The view of each user who has read `/events`, by uid.
    private let views = Mutex<[UInt32: EventLog]>([:])
    /// Finds the projects a uid belongs to now (set once the engine's directory exists).
    private let resolver = Mutex<@Sendable (UInt32) -> Set<String>>({ _ in [] })

    init(log: EventLog) {
        self.log = log
        log.addSink { [weak self] line in self?.forward(line) }
    }

    func resolveProjects(with f: @escaping @Sendable (UInt32) -> Set<String>) { resolver.withLock { $0 = f } }
    private func projects(of uid: UInt32) -> Set<String> { resolver.withLock { $0 }(uid) }

    /// The log `uid` may read.
    func view(for uid: UInt32) -> EventLog {
        if let v = views.withLock({ $0[uid] }) { return v }
        let projects = projects(of: uid)
        let mine = log.lines.filter { line in EventLog.project(ofLine: line[...]).map { projects.contains(String($0)) } ?? false }
        return views.withLock { v in
            if let existing = v[uid] { return existing }
            let view = EventLog(history: mine)
            v[uid] = view
            return view
        }
    }

    /// A new line goes to the views of the users in its project.
    private func forward(_ line: String) {
        guard let project = EventLog.project(ofLine: line[...]).map(String.init) else { return }
        let targets = views.withLock { Array($0) }
        for (uid, view) in targets where projects(of: uid).contains(project) { view.appendLine(line) }
    }
}
