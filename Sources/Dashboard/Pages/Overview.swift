import Foundation

/// The overview page (Horizon's Project › Overview and Admin › Hypervisors): each visible
/// project's quota against its live usage, and each host's vCPU, RAM and disk use.
struct Overview: Sendable {
    let projects: [ProjectUsage]
    let hosts: [HostUsage]
    let hostsProblem: String?
    let instanceCount: Int

    struct Bar: Sendable {
        let label: String
        let used: String
        let limit: String
        let percent: Int
        let level: String
    }
    struct ProjectUsage: Sendable {
        let name: String
        let bars: [Bar]
    }
    struct HostUsage: Sendable {
        let name: String
        let state: String
        let bars: [Bar]
    }

    /// The quotas in the order Horizon draws them, then any others the tree has.
    static let quotaOrder = ["instances", "cores", "ram_mb", "volumes", "gigabytes", "snapshots", "floating_ips",
                             "key_pairs", "server_groups"]

    static func bar(_ label: String, used: Int, limit: Int) -> Bar {
        let pct = limit > 0 ? min(100, used * 100 / limit) : 0
        return Bar(label: label, used: "\(used)", limit: limit < 0 ? "∞" : "\(limit)", percent: pct,
                   level: pct >= 90 ? "bad" : pct >= 70 ? "warn" : "ok")
    }

    static func load(tree: MountedTree) -> Overview {
        let projects = ((try? tree.list("projects")) ?? []).map { p in
            let keys = (try? tree.list("projects/\(p)/quota")) ?? []
            let ordered = quotaOrder.filter(keys.contains) + keys.filter { !quotaOrder.contains($0) }
            return ProjectUsage(name: p, bars: ordered.compactMap { k in
                guard let limit = Int(tree.value("projects/\(p)/quota/\(k)")) else { return nil }
                let used = Int(tree.value("projects/\(p)/usage/\(k)")) ?? 0
                return bar(k, used: used, limit: limit)
            })
        }
        var hosts: [HostUsage] = []
        var problem: String?
        do throws(TreeError) {
            for h in try tree.list("hosts") {
                func n(_ f: String) -> Int { Int(tree.value("hosts/\(h)/\(f)")) ?? 0 }
                hosts.append(HostUsage(name: h, state: tree.value("hosts/\(h)/state"), bars: [
                    bar("vcpus", used: n("vcpus_used"), limit: n("vcpus")),
                    bar("ram_mb", used: n("ram_mb_used"), limit: n("ram_mb")),
                    bar("disk_gb", used: n("disk_gb_used"), limit: n("disk_gb")),
                ]))
            }
        } catch { problem = error.description }
        let count = ((try? tree.list("instances")) ?? []).count
        return Overview(projects: projects, hosts: hosts, hostsProblem: problem, instanceCount: count)
    }
}
