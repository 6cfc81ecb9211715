import CloudCore
import Foundation
import FuseKit

/// The files of `/instances/NAME/` (SPEC "An instance directory"). `wait` and `console`
/// are served by WaitRead.swift and OpenFiles.swift; the rest are snapshots of
/// `InstanceInfo`.
extension CloudFileSystem {
    func instanceContent(_ i: InstanceInfo, _ f: InstanceField) -> [UInt8] {
        switch f {
        case .status: text(i.status.rawValue)
        case .vmState: text(i.vmState.rawValue)
        case .taskState: text(i.taskState.rawValue)
        case .powerState: text(i.powerState.rawValue)
        case .fault: text(i.fault)
        case .host: text(i.host)
        case .ip: lines(i.ips)
        case .mac: lines(i.macs)
        case .domainXML: text(i.domainXML)
        case .id: text(i.id)
        case .created: text(Timestamp.string(i.created))
        case .image: text(i.image)
        case .flavor: text(i.flavor)
        case .project: text(i.project)
        case .group: text(i.group)
        case .infoJSON: infoJSON(i)
        case .actions: lines(api.instanceActions(i.name))
        case .floatingIP: lines(api.floatingIPs().filter { $0.instance == i.name }.map(\.address))
        case .securityGroups: lines(i.securityGroups)
        case .wait, .console, .ctl: []
        }
    }

    /// `info.json`: the whole instance as one JSON object with sorted keys.
    func infoJSON(_ i: InstanceInfo) -> [UInt8] {
        let object: [String: Any] = [
            "name": i.name, "id": i.id, "owner_uid": Int(i.ownerUID), "project": i.project,
            "status": i.status.rawValue, "vm_state": i.vmState.rawValue,
            "task_state": i.taskState.rawValue, "power_state": i.powerState.rawValue,
            "fault": i.fault, "host": i.host, "ips": i.ips, "macs": i.macs,
            "image": i.image, "flavor": i.flavor, "created": Timestamp.string(i.created),
            "domain_xml": i.domainXML, "console_path": i.consolePath, "group": i.group,
            "availability_zone": i.availabilityZone,
        ]
        guard let data = try? JSONSerialization.data(
            withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        else { return [] }
        return Array(data) + [UInt8(ascii: "\n")]
    }
}
