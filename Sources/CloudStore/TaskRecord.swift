import CloudCore
import Foundation
import GRDB

/// What a task does (Nova's instance action names, one per request).
public enum TaskKind: String, Codable, Sendable, CaseIterable {
    case build, delete, action, migrate, evacuate, rebuild, resize
    case confirmResize = "confirm_resize", revertResize = "revert_resize"
}

/// Where a task is: queued → running → done | failed; `cancelled` when a delete overtook
/// it, `interrupted` when a restart found it running and settled the instance instead.
public enum TaskRunState: String, Codable, Sendable {
    case queued, running, done, failed, cancelled, interrupted
}

/// A row of `task`: one accepted request on an instance (Nova's instance_actions + the
/// conductor's work queue). Written in the same transaction as the instance's task_state.
public struct TaskRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "task"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public var id: Int64?
    public var instanceId: String
    public var instanceName: String
    public var kind: TaskKind
    public var argument: String
    public var state: TaskRunState
    public var step: String
    public var created: Double
    public var updated: Double
    public var result: String

    public init(instanceID: String, instanceName: String, kind: TaskKind, argument: String = "") {
        id = nil; instanceId = instanceID; self.instanceName = instanceName; self.kind = kind
        self.argument = argument; state = .queued; step = ""
        created = Date().timeIntervalSince1970; updated = created; result = ""
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A request for work, handed to an instance transaction that queues it.
public struct NewTask: Sendable {
    public var kind: TaskKind
    public var argument: String
    public init(_ kind: TaskKind, _ argument: String = "") { self.kind = kind; self.argument = argument }
}
