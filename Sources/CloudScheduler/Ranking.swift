/// Partial selection over weighed candidates: the few best in order without sorting them
/// all (Nova sorts the whole weighed list; with `host_subset_size` 1 and two alternates only
/// three places matter). Order: higher weight first, ties by host name, so a decision does
/// not depend on the order snapshots arrive in.
enum Ranking {
    /// Positions `0..<count` of the best `k`, best first. O(count × k) at worst, O(count) when
    /// most candidates lose to the current k-th; a full sort when k is a large share of count.
    static func best(_ k: Int, of count: Int, weights: [Double], name: (Int) -> String) -> [Int] {
        let k = min(max(k, 0), count)
        guard k > 0 else { return [] }
        func better(_ a: Int, _ b: Int) -> Bool {
            weights[a] != weights[b] ? weights[a] > weights[b] : name(a) < name(b)
        }
        if k * 8 >= count { return Array((0..<count).sorted(by: better).prefix(k)) }
        var top: [Int] = []
        top.reserveCapacity(k + 1)
        for j in 0..<count {
            if top.count == k {
                guard better(j, top[k - 1]) else { continue }
                top.removeLast()
            }
            var at = top.count
            while at > 0, better(j, top[at - 1]) { at -= 1 }
            top.insert(j, at: at)
        }
        return top
    }

    /// Nova's `shuffle_best_same_weighed_hosts`: when more hosts tie for the best weight than
    /// `subset` holds, one of all of them at random (reservoir sampling, one pass); nil when
    /// the ties fit in the subset, whose random choice already covers them.
    static func randomTied<G: RandomNumberGenerator>(with top: Int, subset: Int, of count: Int, weights: [Double],
                                                    rng: inout G) -> Int? {
        let w = weights[top]
        var seen = 0, chosen = top
        for j in 0..<count where weights[j] == w {
            seen += 1
            if Int.random(in: 0..<seen, using: &rng) == 0 { chosen = j }
        }
        return seen > subset ? chosen : nil
    }
}
