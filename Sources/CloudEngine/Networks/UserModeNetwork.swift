import CloudNetwork

/// User-mode networking (QEMU's slirp) for a cloud that does not manage the host's
/// networks: each guest gets a private user-mode network laid out like its cloud network
/// (its fixed IP, the network's gateway as QEMU's host side), so the config drive's static
/// network_data.json is true inside the guest, and a loopback port forwarded to its port 22.
enum UserModeNetwork {
    /// The resolver QEMU answers on: the network's last usable address, or the one before
    /// it when that is the guest's own.
    static func dnsAddress(_ cidr: IPv4Network, avoiding guest: IPv4Address) -> IPv4Address {
        let last = IPv4Address(cidr.broadcast.value - 1)
        return last == guest ? IPv4Address(cidr.broadcast.value - 2) : last
    }
}
