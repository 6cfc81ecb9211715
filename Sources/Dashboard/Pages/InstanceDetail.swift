#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The instance page (Horizon's instance detail tabs): its fields, actions, console log,
/// action log, events, volumes and the scheduler's decision when it is the latest.
struct InstanceDetail: Sendable {
    let row: InstanceRow
    let fields: [Field]
    let console: String
    let actionLog: [String]
    let events: [String]
    let volumes: [Field]
    /// The scheduler's latest decision when it placed this instance, else nil.
    let decision: String?

    struct Field: Sendable {
        let key: String
        let value: String
    }

    static func load(_ name: String, tree: MountedTree) throws(TreeError) -> InstanceDetail {
        let dir = "instances/" + name
        let flavors = (try? tree.list("flavors")) ?? []
        guard let row = InstanceRow(json: try tree.readBytes(dir + "/info.json"), flavors: flavors) else {
            throw TreeError(errno: EIO, operation: "cat", path: dir + "/info.json", reason: "info.json is not an instance")
        }
        let keys = ["status", "vm_state", "task_state", "power_state", "host", "ip", "mac", "image", "flavor", "key_name",
                    "security_groups", "floating_ip", "group", "project", "created", "id", "ssh", "locked", "fault"]
        let fields = keys.map { Field(key: $0, value: tree.value(dir + "/" + $0)) }
        let console = tree.value(dir + "/console").split(separator: "\n", omittingEmptySubsequences: false)
            .suffix(50).joined(separator: "\n")
        let actions = tree.value(dir + "/actions").split(separator: "\n").map(String.init)
        let events = RefusalLog(tree: tree).tail(bytes: 512 * 1024)
            .filter { EventLine($0)?.object == name }.suffix(40).map { $0 }
        let volumes = ((try? tree.list(dir + "/volumes")) ?? []).map { dev in
            Field(key: dev, value: (try? FileManager.default.destinationOfSymbolicLink(atPath: tree.path(dir + "/volumes/" + dev)))
                .map { ($0 as NSString).lastPathComponent } ?? "")
        }
        // /scheduler is the admin's; its `last` is the latest decision, shown when it is this one.
        let last = tree.value("scheduler/last")
        let decision: String? = !last.isEmpty && (last.contains(name) || last.contains(tree.value(dir + "/id"))) ? last : nil
        return InstanceDetail(row: row, fields: fields, console: console, actionLog: actions, events: events,
                              volumes: volumes, decision: decision)
    }
}
