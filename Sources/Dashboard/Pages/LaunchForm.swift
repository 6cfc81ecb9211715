#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The launch form (Horizon's Launch Instance): the choices the tree offers this user,
/// and the launch file (Nova's server-create fields as JSON) a submitted form becomes.
struct LaunchForm: Sendable {
    let images: [Choice]
    let flavors: [Choice]
    let keypairs: [Choice]
    let networks: [Choice]
    let groups: [Choice]
    let securityGroups: [Choice]

    struct Choice: Sendable {
        let value: String
        let selected: Bool
    }

    static func load(tree: MountedTree) -> LaunchForm {
        func choices(_ dir: String, _ preferred: String) -> [Choice] {
            ((try? tree.list(dir)) ?? []).map { Choice(value: $0, selected: $0 == preferred) }
        }
        return LaunchForm(
            images: choices("images", tree.value("defaults/image")),
            flavors: choices("flavors", tree.value("defaults/flavor")),
            keypairs: choices("keypairs", tree.value("defaults/key_name")),
            networks: choices("networks", tree.value("defaults/network")),
            groups: choices("groups", tree.value("defaults/group")),
            securityGroups: choices("security-groups", "default"))
    }

    /// The launch files for a submitted form: one per instance, named NAME, or NAME-1 …
    /// NAME-N for a count above one (Nova's multi-create naming). Empty fields are left
    /// out, so they take `/defaults` at the moment each file is closed.
    static func launchFiles(_ form: FormBody) throws(TreeError) -> [(name: String, json: String)] {
        let name = form["name"]
        guard !name.isEmpty else { throw TreeError(errno: EINVAL, operation: "launch", path: "", reason: "give the instance a name") }
        let count = Int(form["count"].isEmpty ? "1" : form["count"]) ?? 0
        guard (1...100).contains(count) else {
            throw TreeError(errno: EINVAL, operation: "launch", path: name, reason: "count must be a number from 1 to 100")
        }
        var spec: [String: Any] = [:]
        for key in ["image", "flavor", "key_name", "network", "group", "availability_zone"] where !form[key].isEmpty {
            spec[key] = form[key]
        }
        let groups = form.all("security_groups")
        if !groups.isEmpty { spec["security_groups"] = groups }
        let userData = form.text("user_data")
        if !userData.isEmpty { spec["user_data"] = userData }
        let data = (try? JSONSerialization.data(withJSONObject: spec, options: [.sortedKeys])) ?? Data("{}".utf8)
        let json = String(decoding: data, as: UTF8.self) + "\n"
        return count == 1 ? [(name, json)] : (1...count).map { ("\(name)-\($0)", json) }
    }
}
