import CloudCore
import Foundation
import HostAgent
import XCTest

/// The agent's wire for real on loopback: gRPC over mutual TLS with certificates from
/// AgentPKI. The controller reaches the agent of the host it names, and nobody else gets
/// through: a certificate issued for another host, a client from another CA, a closed port.
final class AgentRPCTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "cloudfs-agent-\(UUID().uuidString)"
        addTeardownBlock { [root] in try? FileManager.default.removeItem(atPath: root) }
    }

    final class Recorder: HostAgentHandler, @unchecked Sendable {
        let lock = NSLock()
        var plans: [AgentPlan] = []
        func status() async throws -> AgentStatus {
            AgentStatus(host: "node1", version: "test", tunnelIP: "127.0.0.1", vlan: false, vxlan: true, segments: ["a"])
        }
        func apply(_ plan: AgentPlan) async throws -> AgentApplied {
            if plan.segments.contains(where: { $0.vni == 13 }) { throw CloudError.invalid("vni 13 is unlucky") }
            lock.withLock { plans.append(plan) }
            return AgentApplied(changes: plan.segments.map { "\($0.network) applied" })
        }
    }

    /// Starts an agent for `host` on a free loopback port; returns its address.
    func startAgent(host: String, pki: AgentPKI, handler: Recorder) throws -> (String, Task<Void, Never>) {
        try pki.issueHostCredentials(host: host, into: root + "/\(host)")
        let port = Int.random(in: 20000...40000)
        let address = "127.0.0.1:\(port)"
        let ready = DispatchSemaphore(value: 0)
        let dir = root + "/\(host)"
        let task = Task {
            do { try await AgentServer.serve(address: address, pkiDirectory: dir, handler: handler) { _ in ready.signal() } } catch {}
        }
        XCTAssertEqual(ready.wait(timeout: .now() + 10), .success, "the agent listens")
        return (address, task)
    }

    func testStatusAndPlanOverMutualTLS() throws {
        let pki = AgentPKI(directory: root + "/pki")
        let handler = Recorder()
        let (address, task) = try startAgent(host: "node1", pki: pki, handler: handler)
        defer { task.cancel() }
        let agents = GRPCHostAgents(pki: pki, timeout: .seconds(5))

        let status = try agents.status(host: "node1", address: address)
        XCTAssertEqual(status.tunnelIP, "127.0.0.1"); XCTAssertEqual(status.segments, ["a"])
        let seg = VXLANSegment(network: "n", vni: 7, bridge: "brvx7", device: "vxlan7", peers: ["10.0.0.2"],
                               macs: ["fa:16:3e:00:00:01": "10.0.0.2"])
        XCTAssertEqual(try agents.apply(AgentPlan(segments: [seg]), host: "node1", address: address).changes, ["n applied"])
        XCTAssertEqual(handler.lock.withLock { handler.plans }, [AgentPlan(segments: [seg])], "the plan arrived whole")

        // The agent's refusal comes back with its reason.
        var bad = seg; bad.vni = 13
        XCTAssertThrowsError(try agents.apply(AgentPlan(segments: [bad]), host: "node1", address: address)) { e in
            XCTAssertTrue((e as? CloudError)?.reason.contains("vni 13 is unlucky") == true, "\(e)")
        }
        // node1's certificate does not answer for node2.
        XCTAssertThrowsError(try agents.status(host: "node2", address: address)) { e in
            let reason = (e as? CloudError)?.reason ?? "\(e)"
            XCTAssertTrue(reason.contains("agent of node2 at \(address): status failed"), reason)
            XCTAssertTrue(reason.contains("the TLS handshake failed: the agent's certificate must be issued for host node2"), reason)
        }
        // A controller of another cloud (another CA) is not let in, nor does it trust the agent.
        let stranger = GRPCHostAgents(pki: AgentPKI(directory: root + "/other-pki"), timeout: .seconds(5))
        XCTAssertThrowsError(try stranger.status(host: "node1", address: address))
    }

    func testAClosedPortFailsFastWithTheAddress() throws {
        let pki = AgentPKI(directory: root + "/pki")
        let agents = GRPCHostAgents(pki: pki, timeout: .seconds(5))
        let t0 = Date()
        XCTAssertThrowsError(try agents.status(host: "node1", address: "127.0.0.1:9")) { e in
            let reason = (e as? CloudError)?.reason ?? "\(e)"
            XCTAssertTrue(reason.contains("agent of node1 at 127.0.0.1:9: status failed"), reason)
            XCTAssertEqual((e as? CloudError)?.errno, .io)
        }
        XCTAssertLessThan(Date().timeIntervalSince(t0), 5.5, "no longer than the call's timeout")
    }

    func testCredentialsFiles() throws {
        let pki = AgentPKI(directory: root + "/pki")
        try pki.issueHostCredentials(host: "node9", into: root + "/out")
        for f in ["ca.pem", "agent.pem", "agent-key.pem"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/out/" + f), f)
        }
        let mode = try FileManager.default.attributesOfItem(atPath: root + "/out/agent-key.pem")[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600, "the key is the host's alone")
        let caBefore = try String(contentsOfFile: pki.caFile, encoding: .utf8)
        try pki.issueHostCredentials(host: "node10", into: root + "/out2")
        XCTAssertEqual(try String(contentsOfFile: pki.caFile, encoding: .utf8), caBefore, "one CA per cloud, kept")
        XCTAssertThrowsError(try pki.issueHostCredentials(host: "bad/name", into: root + "/out3"))
    }
}
