import Foundation

/// The `<disk>` elements of a domain's XML as libvirt writes it (single-quoted
/// attributes): target device, source path and device alias, which a hotplug detach and
/// the restart check need. A small scanner, not a general XML parser: libvirt's own
/// output is all it reads.
struct DiskElement: Equatable {
    var target: String
    var source: String
    /// QEMU's device alias (`virtio-disk1`), which DeviceRemoved events name; "" in an
    /// inactive definition.
    var alias: String
    /// The element itself, enough for virDomainDetachDeviceFlags.
    var xml: String

    static func all(in domainXML: String) -> [DiskElement] {
        var out: [DiskElement] = []
        var rest = domainXML[...]
        while let open = rest.range(of: "<disk "), let close = rest.range(of: "</disk>", range: open.upperBound..<rest.endIndex) {
            let element = rest[open.lowerBound..<close.upperBound]
            rest = rest[close.upperBound...]
            guard let target = attribute("target", "dev", in: element) else { continue }
            let source = attribute("source", "file", in: element) ?? attribute("source", "dev", in: element) ?? ""
            out.append(DiskElement(target: target, source: source, alias: attribute("alias", "name", in: element) ?? "",
                                   xml: String(element)))
        }
        return out
    }

    /// The value of `name` on the first `<tag ...>` in `text`, unescaped.
    private static func attribute(_ tag: String, _ name: String, in text: Substring) -> String? {
        guard let start = text.range(of: "<\(tag) ") else { return nil }
        guard let end = text.range(of: ">", range: start.upperBound..<text.endIndex) else { return nil }
        let attrs = text[start.upperBound..<end.lowerBound]
        for quote in ["'", "\""] {
            guard let a = attrs.range(of: " \(name)=\(quote)") ?? (attrs.hasPrefix("\(name)=\(quote)") ? attrs.range(of: "\(name)=\(quote)") : nil),
                  let b = attrs.range(of: quote, range: a.upperBound..<attrs.endIndex) else { continue }
            return unescape(String(attrs[a.upperBound..<b.lowerBound]))
        }
        return nil
    }

    private static func unescape(_ s: String) -> String {
        guard s.contains("&") else { return s }
        return s.replacingOccurrences(of: "&apos;", with: "'").replacingOccurrences(of: "&quot;", with: "\"")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
