import CloudCore
import Foundation
import Logging
import MetadataServer
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The metadata service over real HTTP on loopback: the OpenStack and EC2 trees of the
/// requesting client only; a client the source does not know gets 404 everywhere.
final class MetadataHTTPServerTests: XCTestCase {
    final class Source: MetadataSource, @unchecked Sendable {
        var known = true
        var asked: [(String, String)] = []
        func metadata(client: String, local: String) -> MetadataDocument? {
            asked.append((client, local))
            guard known else { return nil }
            return MetadataDocument(openstack: ["meta_data.json": Array(#"{"uuid":"u1"}"#.utf8), "user_data": Array("#cloud-config\n".utf8)],
                                    ec2: ["instance-id": "i-1", "placement/availability-zone": "nova", "public-keys/0/openssh-key": "ssh-ed25519 AAAA"],
                                    userData: "#cloud-config\n")
        }
    }

    func get(_ port: Int, _ path: String) -> (Int, String) {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result = (0, "")
        URLSession.shared.dataTask(with: URL(string: "http://127.0.0.1:\(port)\(path)")!) { data, response, _ in
            result = ((response as? HTTPURLResponse)?.statusCode ?? 0, data.map { String(decoding: $0, as: UTF8.self) } ?? "")
            done.signal()
        }.resume()
        _ = done.wait(timeout: .now() + 10)
        return result
    }

    func testServesTheClientsOwnTrees() throws {
        let source = Source()
        let port = 18775 + Int(getpid() % 1000)
        MetadataHTTPServer(source: source, host: "127.0.0.1", port: port, logger: Logger(label: "test")).start { XCTFail($0) }
        var up = false
        for _ in 0..<100 where !up { up = get(port, "/openstack").0 == 200; if !up { usleep(50_000) } }
        XCTAssertTrue(up, "the server answers")
        XCTAssertTrue(get(port, "/openstack").1.contains("latest"))
        XCTAssertEqual(get(port, "/openstack/latest/meta_data.json").1, #"{"uuid":"u1"}"#)
        XCTAssertEqual(get(port, "/openstack/latest/user_data").1, "#cloud-config\n")
        XCTAssertEqual(get(port, "/openstack/2012-08-10/meta_data.json").0, 200)
        XCTAssertEqual(get(port, "/openstack/1999-01-01/meta_data.json").0, 404)
        XCTAssertEqual(get(port, "/openstack/latest/nothing").0, 404)
        XCTAssertEqual(get(port, "/latest/meta-data/instance-id").1, "i-1")
        XCTAssertEqual(get(port, "/2009-04-04/meta-data/placement/availability-zone").1, "nova")
        XCTAssertEqual(get(port, "/latest/meta-data/").1, "instance-id\nplacement/\npublic-keys/")
        XCTAssertEqual(get(port, "/latest/meta-data/public-keys/0/openssh-key").1, "ssh-ed25519 AAAA")
        XCTAssertEqual(get(port, "/latest/user-data").1, "#cloud-config\n")
        XCTAssertEqual(source.asked.last?.0, "127.0.0.1", "the client is told apart by its address")
        source.known = false
        XCTAssertEqual(get(port, "/openstack/latest/meta_data.json").0, 404)
        XCTAssertEqual(get(port, "/latest/meta-data/instance-id").0, 404)
    }

    /// The agent's source: `IP.json` per guest, read at each request; anything but a
    /// dotted quad names no file.
    func testFileSourceAnswersFromTheAgentsDocuments() throws {
        let dir = NSTemporaryDirectory() + "cloudfs-md-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let doc = MetadataDocument(openstack: ["meta_data.json": Array(#"{"uuid":"u2"}"#.utf8)], ec2: ["instance-id": "i-2"], userData: "")
        try JSONEncoder().encode(doc).write(to: URL(fileURLWithPath: dir + "/10.70.0.2.json"))
        try Data("{}".utf8).write(to: URL(fileURLWithPath: dir + "/secret.json"))
        let source = FileMetadataSource(directory: dir)
        XCTAssertEqual(source.metadata(client: "10.70.0.2", local: "169.254.169.254"), doc)
        XCTAssertNil(source.metadata(client: "10.70.0.3", local: "169.254.169.254"))
        XCTAssertNil(source.metadata(client: "secret", local: "169.254.169.254"))
        XCTAssertNil(source.metadata(client: "../cloudfs-md-\(getpid())/10.70.0.2", local: "x"))
    }
}
