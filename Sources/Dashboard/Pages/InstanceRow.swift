import CloudCore
import Foundation
import Mustache

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

    /// The fields of `info.json` a row shows (JSONDecoder: a page of 1,000 rows decodes
    /// 1,000 of them).
    struct Info: Decodable {
        var name: String
        var image = "", flavor = "", host = "", status = "", fault = "", created = ""
        var key_name = "", vm_state = "", task_state = "", power_state = "", locked = ""
        var ips: [String] = []

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            func s(_ k: Keys) -> String { ((try? c.decodeIfPresent(String.self, forKey: k)) ?? nil) ?? "" }
            name = try c.decode(String.self, forKey: .name)
            image = s(.image); flavor = s(.flavor); host = s(.host); status = s(.status); fault = s(.fault)
            created = s(.created); key_name = s(.key_name); vm_state = s(.vm_state); task_state = s(.task_state)
            power_state = s(.power_state); locked = s(.locked)
            ips = ((try? c.decodeIfPresent([String].self, forKey: .ips)) ?? nil) ?? []
        }
        enum Keys: String, CodingKey {
            case name, image, flavor, host, status, fault, created, key_name, vm_state, task_state, power_state, locked, ips
        }
    }

    init?(json bytes: [UInt8], flavors: [String] = [], now: Date = Date()) {
        guard let info = try? JSONDecoder().decode(Info.self, from: Data(bytes)) else { return nil }
        let name = info.name
        self.name = name
        image = info.image; flavor = info.flavor; keyName = info.key_name; host = info.host
        ip = info.ips.joined(separator: ", ")
        status = info.status; task = info.task_state; power = info.power_state
        locked = info.locked; fault = info.fault.isEmpty ? nil : info.fault; created = info.created
        statusClass = Self.statusClass(status)
        transitional = !Self.stableStatuses.contains(status) || task != "none"
        age = Self.age(since: created, now: now)
        let vm = VmState(rawValue: info.vm_state) ?? .error
        let ts = TaskState(rawValue: task) ?? .none
        let hasHost = !host.isEmpty
        actions = InstanceAction.offered(vm: vm, task: ts, hasHost: hasHost, locked: !locked.isEmpty).map {
            ActionButton(verb: $0, label: $0.replacingOccurrences(of: "-", with: " "),
                         danger: ["stop", "reboot hard", "rebuild", "migrate"].contains($0))
        }
        canResize = ts == .none && hasHost && InstanceAction.resizeFrom.contains(vm)
        self.flavors = flavors.filter { $0 != info.flavor }
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
        guard let d = (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(created))
                ?? (try? Date.ISO8601FormatStyle().parse(created)) else { return "" }
        let s = max(0, Int(now.timeIntervalSince(d)))
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" }
        if s < 86400 { return "\(s / 3600)h" }
        return "\(s / 86400)d"
    }
}

/// Rows answer the template's names directly: a page of 1,000 rows looks up some 40,000
/// names, and mustache's default (a Mirror of the row per lookup) cost seconds.
extension InstanceRow: MustacheParent {
    func child(named key: String) -> Any? {
        switch key {
        case "name": name
        case "image": image
        case "ip": ip
        case "flavor": flavor
        case "keyName": keyName
        case "status": status
        case "statusClass": statusClass
        case "task": task
        case "power": power
        case "host": host
        case "age": age
        case "created": created
        case "locked": locked
        case "fault": fault
        case "transitional": transitional
        case "actions": actions
        case "canResize": canResize
        case "flavors": flavors
        case "csrf": csrf
        default: nil
        }
    }
}

extension InstanceRow.ActionButton: MustacheParent {
    func child(named key: String) -> Any? {
        switch key {
        case "verb": verb
        case "label": label
        case "danger": danger
        default: nil
        }
    }
}
