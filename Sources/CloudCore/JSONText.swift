import Foundation

/// A JSON value built from `[String: Any]` objects (the tree's `info.json` files, the
/// metadata documents of the config drive and the metadata service), encoded with
/// JSONEncoder: the same bytes as JSONSerialization with sorted keys, about ten times
/// faster (JSONSerialization on Linux sorts keys with ICU collation, which made `cat
/// info.json` cost milliseconds and a config drive 4 ms).
public enum JSONText: Encodable {
    case string(String), int(Int), double(Double), bool(Bool), array([JSONText]), object([String: JSONText]), null

    public init(_ any: Any) {
        // Most values are strings and objects: each failed cast costs hundreds of instructions.
        switch any {
        case let s as String: self = .string(s)
        case let o as [String: Any]: self = .object(o.mapValues(JSONText.init))
        case let a as [Any]: self = .array(a.map(JSONText.init))
        case let b as Bool: self = .bool(b)
        case let i as Int: self = .int(i)
        case let i as Int64: self = .int(Int(i))
        case let i as UInt32: self = .int(Int(i))
        case let d as Double: self = .double(d)
        case Optional<Any>.none: self = .null
        default: self = .string("\(any)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .bool(let b): try c.encode(b)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        case .null: try c.encodeNil()
        }
    }

    /// Sorted keys and unescaped slashes; pretty-printed as `info.json` files are, or
    /// compact as Nova's metadata documents are.
    public static func encode(_ object: Any, pretty: Bool = true) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                                          : [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(JSONText(object))
    }

    /// Compact JSON (Nova's metadata documents) written byte by byte: keys in byte order,
    /// slashes unescaped, the same bytes JSONEncoder makes for these values. A config
    /// drive holds seven documents; JSONEncoder's generic path was half of its cost.
    public static func compact(_ object: Any) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        JSONText(object).write(into: &out)
        return out
    }

    private func write(into out: inout [UInt8]) {
        switch self {
        case .string(let s): Self.write(string: s, into: &out)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d): out.append(contentsOf: (try? JSONEncoder().encode(d)).map(Array.init) ?? Array("null".utf8))
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .null: out.append(contentsOf: "null".utf8)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                v.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            for (i, key) in o.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.write(string: key, into: &out)
                out.append(UInt8(ascii: ":"))
                o[key]!.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func write(string s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case 0x0A: out.append(contentsOf: #"\n"#.utf8)
            case 0x0D: out.append(contentsOf: #"\r"#.utf8)
            case 0x09: out.append(contentsOf: #"\t"#.utf8)
            case 0x08: out.append(contentsOf: #"\b"#.utf8)
            case 0x0C: out.append(contentsOf: #"\f"#.utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0xF)])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
