import CloudCore
import Foundation

/// One row of the instances table (Horizon's Instances columns), made from the instance's
/// `info.json` — one read per instance, the same bytes `cat instances/NAME/info.json` shows.
struct InstanceRow: Sendable {
    let name: String
    let image: String
    let ip: String
    let flavor: String
    let keyName: String
    let status: String
    let statusClass: String
    let task: String
    let power: String
    let host: String
    let age: String
    let created: String
    let locked: String
    /// The fault, nil when there is none (a mustache section shows it only then).
    let fault: String?
    /// BUILD, REBOOT, DELETING ...: the page keeps it fresh from the event stream.
    let transitional: Bool
    /// The `ctl` verbs Nova's preconditions allow now (CloudCore's shared table).
    let actions: [ActionButton]
    /// Resize is offered (a write to `flavor`) in the states Nova allows it.
    let canResize: Bool
    let flavors: [String]
    var csrf = ""

    struct ActionButton: Sendable {
        let verb: String
        let label: String
        let danger: Bool
    }

    static let stableStatuses: Set<String> = ["ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED", "ERROR", "VERIFY_RESIZE", "RESCUE"]

    init?(json bytes: [UInt8], flavors: [String] = [], now: Date = Date()) {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              let name = obj["name"] as? String else { return nil }
        func s(_ k: String) -> String { (obj[k] as? String) ?? "" }
        self.name = name
        image = s("image"); flavor = s("flavor"); keyName = s("key_name"); host = s("host")
        ip = ((obj["ips"] as? [String]) ?? []).joined(separator: ", ")
        status = s("status"); task = s("task_state"); power = s("power_state")
        locked = s("locked"); fault = s("fault").isEmpty ? nil : s("fault"); created = s("created")
        statusClass = Self.statusClass(status)
        transitional = !Self.stableStatuses.contains(status) || task != "none"
        age = Self.age(since: created, now: now)
        let vm = VmState(rawValue: s("vm_state")) ?? .error
        let ts = TaskState(rawValue: task) ?? .none
        let hasHost = !host.isEmpty
        actions = InstanceAction.offered(vm: vm, task: ts, hasHost: hasHost, locked: !locked.isEmpty).map {
            ActionButton(verb: $0, label: $0.replacingOccurrences(of: "-", with: " "),
                         danger: ["stop", "reboot hard", "rebuild", "migrate"].contains($0))
        }
        canResize = ts == .none && hasHost && InstanceAction.resizeFrom.contains(vm)
        let current = s("flavor")
        self.flavors = flavors.filter { $0 != current }
    }

    static func statusClass(_ status: String) -> String {
        switch status {
        case "ACTIVE": "ok"
        case "ERROR": "bad"
        case "SHUTOFF", "PAUSED", "SUSPENDED": "idle"
        default: "busy"
        }
    }

    /// Horizon's "Age": 42s, 5m, 3h, 2d.
    static func age(since created: String, now: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let d = f.date(from: created) ?? ISO8601DateFormatter().date(from: created) else { return "" }
        let s = max(0, Int(now.timeIntervalSince(d)))
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" }
        if s < 86400 { return "\(s / 3600)h" }
        return "\(s / 86400)d"
    }
}
