import CloudCore
import Foundation

/// What this host's kernel can build for a network, read before anything is created so a
/// mode it cannot carry is refused when it is chosen (`echo vlan > mode`), not when the
/// first guest needs the interface. Nova's `linux_net` only learns it from a failing
/// `ip link add ... type vlan`; Neutron's agents report it as `tunnel_types`.
public struct KernelFeatures: Sendable, Equatable {
    /// 802.1Q VLAN interfaces (`CONFIG_VLAN_8021Q`): built in, loaded, or loadable.
    public var vlan: Bool
    /// VXLAN devices (`CONFIG_VXLAN`).
    public var vxlan: Bool

    public init(vlan: Bool, vxlan: Bool) { self.vlan = vlan; self.vxlan = vxlan }

    /// Reads the running kernel: a feature is there when its module is loaded
    /// (`/sys/module/8021q`, `/sys/module/vxlan`, which built-in code with parameters also
    /// has), its proc directory exists (`/proc/net/vlan`), or its module file is installed
    /// for this release (`modprobe` could load it). `root` prefixes every path (tests).
    public static func probe(root: String = "") -> KernelFeatures {
        let fm = FileManager.default
        let release = (try? String(contentsOfFile: root + "/proc/sys/kernel/osrelease", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        func present(module: String, modulePath: String, extra: [String]) -> Bool {
            if fm.fileExists(atPath: "\(root)/sys/module/\(module)") { return true }
            if extra.contains(where: { fm.fileExists(atPath: root + $0) }) { return true }
            guard !release.isEmpty else { return false }
            let dir = "\(root)/lib/modules/\(release)/kernel/\(modulePath)"
            if let files = try? fm.contentsOfDirectory(atPath: dir), files.contains(where: { $0.hasPrefix(module + ".ko") }) { return true }
            let builtin = (try? String(contentsOfFile: "\(root)/lib/modules/\(release)/modules.builtin", encoding: .utf8)) ?? ""
            return builtin.contains("/\(module).ko")
        }
        return KernelFeatures(vlan: present(module: "8021q", modulePath: "net/8021q", extra: ["/proc/net/vlan"]),
                              vxlan: present(module: "vxlan", modulePath: "drivers/net/vxlan", extra: []))
    }

    /// The refusal for `mode` on this kernel, nil when it can carry it.
    public func refusal(for mode: NetworkMode) -> CloudError? {
        switch mode {
        case .vlan where !vlan: CloudError(.notSupported, "this kernel has no 802.1Q; use vxlan")
        case .vxlan where !vxlan: CloudError(.notSupported, "this kernel has no VXLAN (CONFIG_VXLAN); use flatdhcp")
        default: nil
        }
    }
}
