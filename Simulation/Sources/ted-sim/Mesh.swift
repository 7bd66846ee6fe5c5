import TEDModel
import TEDWire

/// Who is where in the simulated mesh. Nothing is ever sent on a network: these addresses
/// only name gateways and hosts inside the simulation.
///
/// - Gateway `g` (hubs first, then branches) protects the site 10.(g / 256).(g % 256).0/24;
///   its hosts are .10 (clients) and .20 (servers). So at most 65,536 gateways.
/// - Its identity (IKE and TED address) is 2001:db8:0:g::1, each in a /64 of its own: the
///   responder's per-target and proven buckets are per /64, so no two gateways share one
///   (real branches sit behind different ISPs' addresses).
/// - Its region is `g % 4`; one-way latency between gateways is the regions' entry in
///   `oneWayMilliseconds`, plus up to 1 ms of per-datagram jitter.
struct Mesh {
    let hubs: Int
    let branches: Int
    var count: Int { hubs + branches }
    static let maximumGateways = 65_536

    func isHub(_ gateway: Int) -> Bool { gateway < hubs }

    func site(_ gateway: Int) -> AddressPattern {
        AddressPattern(family: .v4, address: UInt128(Self.siteBase(gateway)), mask: UInt128(0xffff_ff00))
    }

    func host(_ gateway: Int, _ last: UInt32) -> IPAddress { IPAddress(v4: Self.siteBase(gateway) | last) }

    /// The gateway whose site holds `address`, if any.
    func gateway(ofSite address: IPAddress) -> Int? {
        guard let v4 = address.v4, v4 >> 24 == 10 else { return nil }
        let gateway = Int((v4 >> 8) & 0xffff)
        return gateway < count ? gateway : nil
    }

    func identity(_ gateway: Int) -> IPAddress { IPAddress(v6: Self.identityBase | UInt128(gateway) << 64 | 1) }

    /// The gateway whose identity is `address`, if any.
    func gateway(ofIdentity address: IPAddress) -> Int? {
        guard address.family == .v6, address.bits >> 96 == Self.identityBase >> 96, address.bits & 0xffff_ffff_ffff_ffff == 1
        else { return nil }
        let gateway = Int((address.bits >> 64) & 0xffff_ffff)
        return gateway < count ? gateway : nil
    }

    func region(_ gateway: Int) -> Int { gateway % Self.regionNames.count }

    func oneWayNanoseconds(_ a: Int, _ b: Int) -> Int64 {
        Self.oneWayMilliseconds[region(a)][region(b)] * 1_000_000
    }

    static let regionNames = ["eu", "us-east", "us-west", "apac"]
    /// One-way latency in milliseconds between regions (5 ms inside one).
    static let oneWayMilliseconds: [[Int64]] = [
        [5, 40, 50, 50],
        [40, 5, 20, 50],
        [50, 20, 5, 35],
        [50, 50, 35, 5],
    ]

    private static func siteBase(_ gateway: Int) -> UInt32 { 0x0a00_0000 | UInt32(gateway) << 8 }
    private static let identityBase: UInt128 = 0x2001_0db8 << 96
}
