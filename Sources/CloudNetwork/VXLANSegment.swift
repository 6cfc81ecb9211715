import CloudCore

extension HostNetworking {
    /// Makes the host carry `segment`: bridge and VXLAN device (sending from `local`, the
    /// host's tunnel address, when given), both up, and exactly the segment's forwarding
    /// entries on the device (missing ones added, stale ones deleted). Returns what
    /// changed, one phrase per step (empty: nothing).
    @discardableResult
    public func ensureSegment(_ segment: VXLANSegment, local: String?) throws(CloudError) -> [String] {
        var changed: [String] = []
        for name in [segment.bridge, segment.device] { try InterfaceName.validate(name, field: "interface") }
        if try ensureBridgeUp(segment.bridge) { changed.append("bridge \(segment.bridge) created") }
        if !linkExists(segment.device) {
            var cmd = ["ip", "link", "add", segment.device, "type", "vxlan", "id", "\(segment.vni)",
                       "dstport", "\(VXLANSegment.udpPort)", "nolearning"]
            if let local { cmd += ["local", local] }
            try runner.check(cmd)
            changed.append("vxlan \(segment.device) vni \(segment.vni) created")
        }
        try runner.check(["ip", "link", "set", "dev", segment.device, "master", segment.bridge])
        try runner.check(["ip", "link", "set", "dev", segment.device, "up"])
        changed += try syncForwarding(segment)
        return changed
    }

    /// The device's forwarding entries with a `dst` (what l2population manages), as
    /// `MAC dst` pairs.
    public func forwardingEntries(device: String) throws(CloudError) -> Set<FDBEntry> {
        let out = try runner.check(["bridge", "fdb", "show", "dev", device])
        var entries: Set<FDBEntry> = []
        for line in out.split(whereSeparator: \.isNewline) {
            let words = line.split(separator: " ").map(String.init)
            guard let mac = words.first, let d = words.firstIndex(of: "dst"), d + 1 < words.count else { continue }
            entries.insert(FDBEntry(mac: mac.lowercased(), dst: words[d + 1]))
        }
        return entries
    }

    private func syncForwarding(_ segment: VXLANSegment) throws(CloudError) -> [String] {
        var wanted: Set<FDBEntry> = Set(segment.peers.map { FDBEntry(mac: VXLANSegment.floodMAC, dst: $0) })
        for (mac, dst) in segment.macs { wanted.insert(FDBEntry(mac: mac.lowercased(), dst: dst)) }
        let have = try forwardingEntries(device: segment.device)
        var changed: [String] = []
        for e in have.subtracting(wanted).sorted() {
            _ = try runner.run(["bridge", "fdb", "del", e.mac, "dev", segment.device, "dst", e.dst])
            changed.append("fdb \(e.mac) dst \(e.dst) deleted")
        }
        for e in wanted.subtracting(have).sorted() {
            // The flood MAC takes one entry per peer (`append`); a guest MAC has one place.
            let verb = e.mac == VXLANSegment.floodMAC ? "append" : "replace"
            try runner.check(["bridge", "fdb", verb, e.mac, "dev", segment.device, "dst", e.dst])
            changed.append("fdb \(e.mac) dst \(e.dst) added")
        }
        return changed
    }

    /// Removes a segment's device and bridge (absent ones are fine).
    @discardableResult
    public func removeSegment(bridge: String, device: String) throws(CloudError) -> [String] {
        try removeLinks(named: [device, bridge])
    }
}
