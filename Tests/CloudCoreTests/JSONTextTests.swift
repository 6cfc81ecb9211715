import CloudCore
import Foundation
import XCTest

/// `JSONText.compact`, the metadata documents' writer, against JSONEncoder's bytes.
final class JSONTextTests: XCTestCase {
    func encoderBytes(_ object: Any) throws -> [UInt8] { Array(try JSONText.encode(object, pretty: false)) }

    func testCompactIsTheEncodersBytes() throws {
        let document: [String: Any] = [
            "uuid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "name": "web/1 \"quoted\" back\\slash",
            "launch_index": 0, "big": Int.max, "negative": -42, "flag": true, "off": false,
            "meta": ["role": "db", "note": "tab\there\nnewline\r\u{8}\u{c}\u{1}\u{1f} ünïcødé ✓"],
            "devices": [] as [Any], "empty": [String: Any](), "ratio": 1.5, "whole": 2.0,
            "keys": [["name": "me", "type": "ssh", "data": "ssh-ed25519 AAAA me@host"]],
            "ami-id": "ami-1", "ami-launch-index": 0, "availability_zone": "nova", "a_b": 1, "a-b": 2, "aB": 3, "Ab": 4,
            "nested": [[1, 2, [3, ["x": nil as Any?]]] as [Any]],
        ]
        XCTAssertEqual(String(decoding: JSONText.compact(document), as: UTF8.self),
                       String(decoding: try encoderBytes(document), as: UTF8.self))
    }

    func testCompactParsesBack() throws {
        let bytes = JSONText.compact(["a": ["b": "c/d"], "n": 3])
        let back = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
        XCTAssertEqual((back?["a"] as? [String: String])?["b"], "c/d")
        XCTAssertEqual(back?["n"] as? Int, 3)
    }
}
