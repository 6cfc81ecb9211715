import Foundation

/// The way in without host networking: each instance of a cloud in user-mode networking
/// gets a loopback port that QEMU's user-mode stack forwards to the guest's port 22
/// (`instances/NAME/ssh`). Ports are the instances' (a unique column); one another
/// program already listens on is skipped.
enum SSHPorts {
    /// The lowest port of `range` no instance in `catalog` holds and nothing on this
    /// machine listens on; nil when none is left.
    static func free(in catalog: Catalog, range: ClosedRange<Int>) -> Int? {
        let taken = Set(catalog.instances.values.compactMap(\.sshPort))
        return range.first { !taken.contains($0) && isBindable($0) }
    }

    /// Whether a TCP listener could take 127.0.0.1:`port` now.
    static func isBindable(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
