import Foundation

/// The dashboard's instances page over `count` instances vs the shell reading the same
/// fields from the same mount in the same run: `ls -l instances/` plus `cat` of every
/// instance's info.json (the bytes the page is made of), and plus `cat` of the ten field
/// files a script would read instead.
struct DashboardBench {
    let rig: Rig
    let count: Int
    let reproduce: String

    func run() throws {
        try timed("cd '\(rig.mnt)/instances' && for i in $(seq 1 \(count)); do mkdir i$i; done")
        try timed("cd '\(rig.mnt)/instances' && while grep -q BUILD */status 2>/dev/null; do sleep 0.2; done")
        let out = rig.work + "/dashboard.out"
        let server = Process()
        server.executableURL = URL(fileURLWithPath: rig.cloudfs)
        server.arguments = ["dashboard", rig.mnt, "--listen", "127.0.0.1:0"]
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        server.standardOutput = FileHandle(forWritingAtPath: out)
        try server.run()
        defer { server.terminate(); server.waitUntilExit() }
        var url = ""
        for _ in 0..<200 where url.isEmpty {
            usleep(50_000)
            let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            if let r = text.range(of: #"http://\S+"#, options: .regularExpression) { url = String(text[r]) }
        }
        guard let cut = url.range(of: "/?token=") else { throw BenchError("the dashboard printed no URL") }
        let base = String(url[..<cut.lowerBound]), jar = rig.work + "/jar"
        try timed("curl -s -c '\(jar)' -o /dev/null '\(url)'")
        let page = rig.work + "/instances.html"
        func best(_ s: String) throws -> Double { try (0..<5).map { _ in try timed(s) }.min()! }
        let render = try best("curl -s -f -b '\(jar)' -o '\(page)' '\(base)/instances'")
        let rows = ((try? String(contentsOfFile: page, encoding: .utf8)) ?? "").components(separatedBy: "<tr id=\"row-").count - 1
        let info = try best("cd '\(rig.mnt)/instances' && ls -l > /dev/null && cat */info.json > /dev/null")
        let fields = "image ip flavor key_name status task_state power_state host created locked"
        let files = try best("cd '\(rig.mnt)/instances' && ls -l > /dev/null && for f in \(fields); do cat */$f; done > /dev/null")
        print("11. dashboard: the instances page with \(count) instances (\(rows) rows rendered)")
        report("   GET /instances", String(format: "%8.1f ms", render * 1000),
               String(format: "ls -l + cat */info.json %.1f ms: %.2fx", info * 1000, render / info))
        report("", "", String(format: "ls -l + cat of the 10 field files %.1f ms: %.2fx", files * 1000, render / files))
        print("   reproduce: \(reproduce)\n")
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
