import CloudCore
import Foundation
import XCTest

/// Commands are typed once, at the FUSE boundary: what each parser takes, what it refuses
/// (EINVAL naming the choices), and the task rows' Codable form, old rows included.
final class CommandTests: XCTestCase {
    func testInstanceActionsParseEveryVerbAndNothingElse() throws {
        XCTAssertEqual(try InstanceAction(parsing: "stop"), .power(.stop))
        XCTAssertEqual(try InstanceAction(parsing: "reboot   hard"), .power(.rebootHard))
        XCTAssertEqual(try InstanceAction(parsing: "\treboot\thard "), .power(.rebootHard))
        XCTAssertEqual(try InstanceAction(parsing: "confirm-resize"), .confirmResize)
        XCTAssertEqual(try InstanceAction(parsing: "migrate"), .migrate(host: nil))
        XCTAssertEqual(try InstanceAction(parsing: "migrate node2"), .migrate(host: "node2"))
        XCTAssertEqual(try InstanceAction(parsing: "live-migrate"), .liveMigrate(host: nil))
        XCTAssertEqual(try InstanceAction(parsing: " live-migrate  node3 "), .liveMigrate(host: "node3"))
        XCTAssertEqual(try InstanceAction(parsing: "live-migrate-abort"), .liveMigrateAbort)
        XCTAssertEqual(InstanceAction.liveMigrate(host: "n").verb, "live-migrate n")
        XCTAssertThrowsError(try InstanceAction(parsing: "live-migrate a b"))
        for verb in PowerAction.allCases.map(\.rawValue) + ["rebuild", "confirm-resize", "revert-resize", "lock", "unlock"] {
            XCTAssertEqual(try InstanceAction(parsing: verb).verb, verb, "verbs round-trip")
        }
        for bad in ["", "teleport", "migrate a b", "Stop", "reboot soft", "lock now"] {
            XCTAssertThrowsError(try InstanceAction(parsing: bad), bad) { e in
                let err = e as? CloudError
                XCTAssertEqual(err?.errno, .invalid)
                XCTAssertTrue(err?.reason.contains("actions: pause, reboot, reboot hard, resume, start, stop, suspend, unpause, rebuild") ?? false,
                              err?.reason ?? "")
            }
        }
    }

    func testHostFlavorAndFloatingIPWrites() throws {
        XCTAssertEqual(try HostAction(parsing: "evacuate"), .evacuate)
        XCTAssertThrowsError(try HostAction(parsing: "reboot")) { XCTAssertEqual(($0 as? CloudError)?.errno, .invalid) }
        XCTAssertEqual(try FlavorChange(field: "ram_mb", parsing: "2048"), .ramMB(2048))
        XCTAssertThrowsError(try FlavorChange(field: "vcpus", parsing: "lots")) { e in
            XCTAssertEqual((e as? CloudError)?.reason, "vcpus must be a whole number, got 'lots'")
        }
        XCTAssertEqual(FloatingIPRequest(parsing: ""), FloatingIPRequest.none)
        XCTAssertEqual(FloatingIPRequest(parsing: "auto"), .auto)
        XCTAssertEqual(FloatingIPRequest(parsing: "10.99.0.3"), .address("10.99.0.3"))
        XCTAssertEqual(InstanceChange.securityGroupNames("default, web\nweb\tssh"), ["default", "web", "ssh"])
    }

    func testTasksAreStoredAsFlatJSONAndOldRowsConvert() throws {
        let tasks: [InstanceTask] = [.build, .delete, .power(.rebootHard), .migrate(host: nil), .migrate(host: "n2"),
                                     .evacuate, .rebuild, .resize(flavor: "m1.small"), .confirmResize, .revertResize,
                                     .liveMigrate(host: nil), .liveMigrate(host: "n3")]
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for t in tasks {
            let json = try encoder.encode(t)
            XCTAssertEqual(try JSONDecoder().decode(InstanceTask.self, from: json), t)
            XCTAssertEqual(InstanceTask(legacyKind: t.kind, argument: t.argument), t, "a v9 row (kind, argument) reads the same")
        }
        XCTAssertEqual(String(decoding: try encoder.encode(InstanceTask.power(.rebootHard)), as: UTF8.self),
                       #"{"action":"reboot hard","kind":"action"}"#)
        XCTAssertNil(InstanceTask(legacyKind: "action", argument: "dance"))
        XCTAssertThrowsError(try JSONDecoder().decode(InstanceTask.self, from: Data(#"{"kind":"fly"}"#.utf8)))
    }

    func testSettingKeysRoundTripTheirStoredNames() {
        let keys: [SettingKey] = [.cloudID, .flavorsSeeded, .scheduler("max_attempts")]
            + DefaultKey.allCases.map { .defaultValue($0) } + ConfigKey.allCases.map { .config($0) }
        for k in keys { XCTAssertEqual(SettingKey(storageKey: k.storageKey), k, k.storageKey) }
        XCTAssertEqual(SettingKey.defaultValue(.availabilityZone).storageKey, "default.availability_zone")
        XCTAssertNil(SettingKey(storageKey: "default.nothing"))
        XCTAssertNil(SettingKey(storageKey: "bench.1"))
    }
}
