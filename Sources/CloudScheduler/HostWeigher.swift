import CloudCore

/// One weigher of the FilterScheduler (Nova's `BaseHostWeigher`): a raw number per host,
/// higher is better. The scheduler normalises each weigher's numbers to [0, 1] across the
/// hosts that passed the filters, multiplies by `multiplier` and sums (Nova's
/// `BaseWeightHandler.get_weighed_objects`).
public protocol HostWeigher: Sendable {
    /// The Nova class name, as written in the weigher list and shown in reports.
    var name: String { get }
    /// Nova's `*_weight_multiplier`: positive spreads, negative stacks, 0 ignores.
    var multiplier: Double { get set }
    /// Nova's `BaseWeigher.minval`: raw weights are raised to it, and normalisation starts
    /// from it instead of the smallest weight seen. nil: the smallest weight seen.
    var minval: Double? { get }
    /// Nova's `BaseWeigher.maxval`, likewise for the top. nil: the largest weight seen.
    var maxval: Double? { get }
    /// False when every host would weigh the same for this spec (skipped: adds 0 anyway).
    func isRelevant(to spec: RequestSpec) -> Bool
    /// Nova's `_weigh_object(host_state, weight_properties)`: the raw weight.
    func weigh(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Double
    /// Nova's `weigh_objects`: the raw weight of each candidate (indices into `hosts`) into
    /// `raw`, raised to `minval` and lowered to `maxval`, and their normalisation, the
    /// minimum and maximum found in the same pass. The default calls `weigh` for each;
    /// being a requirement, it is compiled per weigher type.
    func weighAll(_ hosts: [HostSnapshot], _ candidates: [Int], _ spec: RequestSpec, _ context: FilterContext,
                  into raw: inout [Double]) -> Normalization
}

extension HostWeigher {
    /// No lower bound unless the weigher declares one.
    public var minval: Double? { nil }
    /// No upper bound unless the weigher declares one.
    public var maxval: Double? { nil }
    /// Every weigher is relevant unless it says otherwise.
    public func isRelevant(to spec: RequestSpec) -> Bool { true }

    /// The raw weights of `candidates` into `raw[0..<candidates.count]`, clamped, and
    /// their normalisation.
    public func weighAll(_ hosts: [HostSnapshot], _ candidates: [Int], _ spec: RequestSpec, _ context: FilterContext,
                         into raw: inout [Double]) -> Normalization {
        let floor = minval ?? -Double.infinity, ceiling = maxval ?? Double.infinity
        var lo = Double.infinity, hi = -Double.infinity
        raw.withUnsafeMutableBufferPointer { out in
            candidates.withUnsafeBufferPointer { cand in
                for j in cand.indices {
                    let x = min(max(weigh(hosts[cand[j]], spec, context), floor), ceiling)
                    out[j] = x
                    lo = min(lo, x)
                    hi = max(hi, x)
                }
            }
        }
        return Normalization(observedMin: lo, observedMax: hi, minval: minval, maxval: maxval)
    }

    /// One raw weight, clamped as `weighAll` clamps it.
    func clampedWeight(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Double {
        min(max(weigh(host, spec, context), minval ?? -Double.infinity), maxval ?? Double.infinity)
    }
}

/// Nova's `nova.weights.normalize`: maps weights onto [0, 1] between `minval` (default:
/// the smallest) and `maxval` (default: the largest); when the two are equal every weight
/// becomes 0.
public struct Normalization: Sendable, Equatable {
    /// The value that maps to 0.
    public let lower: Double
    /// `upper - lower`; 0 means "everything maps to 0".
    public let range: Double

    /// The normalisation for weights whose extremes are `observedMin`/`observedMax`.
    public init(observedMin: Double, observedMax: Double, minval: Double? = nil, maxval: Double? = nil) {
        let lo = minval ?? observedMin, hi = maxval ?? observedMax
        lower = lo
        range = hi == lo ? 0 : hi - lo
    }

    /// The normalised value of one weight.
    @inlinable public func callAsFunction(_ weight: Double) -> Double { range == 0 ? 0 : (weight - lower) / range }

    /// Nova's `normalize(weight_list, minval, maxval)` over a whole list.
    public static func normalize(_ weights: [Double], minval: Double? = nil, maxval: Double? = nil) -> [Double] {
        guard let lo = weights.min(), let hi = weights.max() else { return [] }
        let n = Normalization(observedMin: lo, observedMax: hi, minval: minval, maxval: maxval)
        return weights.map { n($0) }
    }
}
