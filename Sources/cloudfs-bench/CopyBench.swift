import Foundation

/// cp of a large file into /images (streamed, hashed, sniffed) vs cp to the same disk.
struct CopyBench {
    let rig: Rig
    let mib: Int
    let reproduce: String

    func run() throws {
        let src = rig.work + "/big.src"
        try timed("head -c \(mib)M /dev/urandom > '\(src)' && cat '\(src)' > /dev/null")
        var plain: [Double] = [], cloud: [Double] = []
        for i in 0..<2 {
            plain.append(try timed("cp '\(src)' '\(rig.work)/copy\(i)' && sync '\(rig.work)/copy\(i)'"))
            try timed("rm -f '\(rig.work)/copy\(i)'")
            cloud.append(try timed("cp '\(src)' '\(rig.mnt)/images/big\(i)' && sync '\(rig.state)/images'"))
            try timed("rm -f '\(rig.mnt)/images/big\(i)'")
        }
        try timed("rm -f '\(src)'")
        let p = plain.min()!, c = cloud.min()!
        print("1. cp \(mib) MiB into /images (sha256 + format detection) vs cp to the same disk")
        report("   cp to the same disk (baseline)", String(format: "%7.0f MB/s", Double(mib) / p))
        report("   cp into /cloud/images", String(format: "%7.0f MB/s", Double(mib) / c))
        report("   ratio (cloudfs time / baseline time)", String(format: "%7.2fx", c / p))
        print("   reproduce: \(reproduce)")
        print("")
    }
}
