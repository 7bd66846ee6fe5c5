/// A policy entry with where it came from.
public struct PolicyRule: Hashable, Sendable {
    /// 1-based position among the policy's entries (remarks not counted).
    public let index: Int
    public let entry: PolicyEntry
    /// The entry as written.
    public let text: String
    /// Line in the configuration file, when it came from one.
    public let line: Int?

    public init(index: Int, entry: PolicyEntry, text: String, line: Int? = nil) {
        self.index = index
        self.entry = entry
        self.text = text
        self.line = line
    }
}

/// First-match lookups over a policy. Kept small so a faster classifier can replace the scan.
public protocol PolicyLookup: Sendable {
    /// The first rule matching an outbound packet (initiator) or a probe summary mirrored (responder).
    func firstMatch(_ packet: Packet, as role: Role) -> PolicyRule?

    /// The 0-based position in the policy's `rules` of that first rule: the same answer,
    /// without copying the `PolicyRule` (its text is a reference: a copy costs a retain
    /// and a release, and at 100k entries a cache miss more than the lookup itself).
    func firstMatchPosition(_ packet: Packet, as role: Role) -> Int?

    /// The positions above `position` (0-based) of the entries sharing traffic with its
    /// entry in `family` (`PolicyEntry.sharesTraffic`), ascending.
    func earlierPositions(sharingWith position: Int, family: IPAddress.Family) -> [Int]
}

extension PolicyLookup {
    /// The own share of the entry at `position` (0-based) of `policy` in `family`.
    public func share(ofPosition position: Int, in policy: Policy, family: IPAddress.Family) -> EntryShare {
        EntryShare.of(policy.entry(at: position), family: family,
                      without: earlierPositions(sharingWith: position, family: family).map(policy.entry(at:)))
    }
}

/// An ordered crypto ACL (the SPD): first match wins; `deny` means "not protected".
public struct Policy: Hashable, Sendable, PolicyLookup {
    public let rules: [PolicyRule]
    /// The entries alone: plain values, so a scan copies no reference (no retain/release).
    private let entries: [PolicyEntry]

    public init(rules: [PolicyRule]) {
        self.rules = rules
        self.entries = rules.map(\.entry)
    }

    /// Builds a policy from ACL lines (remarks and blank lines skipped).
    ///
    /// Throws the first bad line's 0-based index and its syntax error.
    /// The entries above entry `index` (1-based), in order: what a tunnel for a packet
    /// matched by entry `index` must never take (`TrafficSelector.proposal`).
    public func entries(above index: Int) -> [PolicyEntry] {
        rules.prefix { $0.index < index }.map(\.entry)
    }

    public init(lines: [String]) throws(PolicyLineError) {
        var rules: [PolicyRule] = []
        for (offset, line) in lines.enumerated() {
            do throws(SyntaxError) {
                if let entry = try ACLParser.parseLine(line) {
                    rules.append(PolicyRule(index: rules.count + 1, entry: entry, text: line))
                }
            } catch {
                throw PolicyLineError(lineIndex: offset, error: error)
            }
        }
        self.init(rules: rules)
    }

    public func firstMatch(_ packet: Packet, as role: Role) -> PolicyRule? {
        firstMatchPosition(packet, as: role).map { rules[$0] }
    }

    public func firstMatchPosition(_ packet: Packet, as role: Role) -> Int? {
        switch role {
        case .initiator: entries.firstIndex { $0.matchesOutbound(packet) }
        case .responder: entries.firstIndex { $0.matchesInbound(packet) }
        }
    }

    /// The entry of `rules[position]`, read from the plain entries (no reference copied).
    public func entry(at position: Int) -> PolicyEntry { entries[position] }

    /// The positions above `position` (0-based) of the entries that share traffic with its
    /// entry in `family`, ascending: what the entry's share is without (`EntryShare`).
    public func earlierPositions(sharingWith position: Int, family: IPAddress.Family) -> [Int] {
        let entry = entries[position]
        guard entry.restricted(to: family) != nil else { return [] }
        return entries[..<position].indices.filter { entries[$0].sharesTraffic(with: entry, family: family) }
    }

    /// The own share of the entry at `position` (0-based) in `family`, by a scan.
    public func share(ofPosition position: Int, family: IPAddress.Family) -> EntryShare {
        share(ofPosition: position, in: self, family: family)
    }

    /// The permit rules, in policy order.
    public var permits: [PolicyRule] { rules.filter { $0.entry.action == .permit } }
}

/// A syntax error on one line of a list of ACL lines.
public struct PolicyLineError: Error, Hashable, Sendable {
    public let lineIndex: Int
    public let error: SyntaxError
}
