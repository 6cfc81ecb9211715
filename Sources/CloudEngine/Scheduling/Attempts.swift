import CloudCore

/// Nova's retry policy for one placement (the RetryFilter plus `max_attempts`), shared by
/// builds, migrations and evacuations: when the work on the claimed host fails, the host
/// is remembered, left out of the next decision (`tried` becomes the RequestSpec's tried
/// hosts), and another is tried until `max_attempts` hosts were; the fault then names
/// every failure.
struct Attempts {
    /// Nova's `max_attempts` when the placement started.
    let max: Int
    /// What failed, for the fault: "Build", "Migration" ...
    let what: String
    /// Hosts whose work failed, in order.
    private(set) var tried: [String] = []
    private var failures: [String] = []

    init(max: Int, what: String) { self.max = Swift.max(1, max); self.what = what }

    /// The attempt about to be made (1-based), as `/scheduler/last` numbers it.
    var number: Int { tried.count + 1 }

    /// Records that the work failed on `host` with `error`. Returns nil when another host
    /// may be tried, else the error that ends the placement (the failure itself after one
    /// attempt, every host's failure after several).
    mutating func failed(on host: String, _ error: CloudError) -> CloudError? {
        tried.append(host)
        failures.append("\(host): \(error.reason)")
        if tried.count < max { return nil }
        return failures.count == 1 ? error : CloudError(error.errno, "\(what) failed on \(failures.joined(separator: "; "))")
    }

    /// The fault of a placement that ends with `error` outside `failed(on:)`: when no other
    /// host could be found after failures, both are told.
    func fault(_ error: CloudError) -> String {
        guard !failures.isEmpty, error.errno == .noSpace else { return error.reason }
        return "\(what) failed on \(failures.joined(separator: "; ")); rescheduling: \(error.reason)"
    }
}
