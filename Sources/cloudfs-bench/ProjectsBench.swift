import Foundation

/// The price of per-caller visibility: `ls -l instances/` and `cat instances/*/status` over
/// instances spread across 10 projects, run by a non-admin (a reader in every project, so
/// both see the same instances) and by the admin, on the same `--allow-other` mount.
struct ProjectsBench {
    let rig: Rig
    let count: Int
    let reproduce: String
    static let account = "cfsbench"

    func run() throws {
        let made = (try? timed("id -u \(Self.account) >/dev/null 2>&1")) == nil
        if made { try timed("useradd --no-create-home --shell /usr/sbin/nologin \(Self.account)") }
        defer { if made { _ = try? timed("userdel \(Self.account)") } }
        let m = rig.mnt
        try timed("echo public > '\(m)/images.d/disk/visibility' && mkdir '\(m)/users/\(Self.account)'")
        for p in 0..<10 {
            try timed("mkdir '\(m)/projects/p\(p)' && echo '\(Self.account) reader' > '\(m)/projects/p\(p)/members' && for q in instances cores ram_mb; do echo -1 > '\(m)/projects/p\(p)/quota/'$q; done")
        }
        let perProject = count / 10
        for p in 0..<10 {
            try timed("echo p\(p) > '\(m)/defaults/project' && cd '\(m)/instances' && for i in $(seq 1 \(perProject)); do mkdir p\(p)-$i; done")
        }
        try timed("cd '\(m)/instances' && while grep -q BUILD */status 2>/dev/null; do sleep 0.2; done")
        let asUser = "setpriv --reuid=\(Self.account) --regid=\(Self.account) --clear-groups"
        let asAdmin = "setpriv --reuid=0 --regid=0 --clear-groups"
        try timed("\(asUser) ls '\(m)/instances' | wc -l > '\(rig.work)/seen'")
        let seen = try String(contentsOfFile: "\(rig.work)/seen", encoding: .utf8)
        func best(_ s: String) throws -> Double { try (0..<5).map { _ in try timed(s) }.min()! }
        let lsAdmin = try best("\(asAdmin) ls -l '\(m)/instances' > /dev/null")
        let lsUser = try best("\(asUser) ls -l '\(m)/instances' > /dev/null")
        let catAdmin = try best("cd '\(m)/instances' && \(asAdmin) sh -c 'cat */status' > /dev/null")
        let catUser = try best("cd '\(m)/instances' && \(asUser) sh -c 'cat */status' > /dev/null")
        print("9. \(perProject * 10) instances in 10 projects, --allow-other (no kernel caching); the non-admin sees \(seen.trimmingCharacters(in: .whitespacesAndNewlines))")
        report("   ls -l instances/ as a reader", String(format: "%8.1f ms", lsUser * 1000), String(format: "admin %.1f ms, %.2fx", lsAdmin * 1000, lsUser / lsAdmin))
        report("   cat instances/*/status as a reader", String(format: "%8.1f ms", catUser * 1000), String(format: "admin %.1f ms, %.2fx", catAdmin * 1000, catUser / catAdmin))
        print("   reproduce: \(reproduce)\n")
    }
}
