import ArgumentParser
import TEDDaemon
import TEDModel
import TEDVici

/// `ted intersect`: the TED v3 intersection of two policy entries, offline.
struct IntersectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "intersect",
        abstract: "Intersect an initiator's and a responder's policy entry (TED v3, patent FIG. 3A-3C).",
        discussion: """
            Each entry is an ACL line without permit/deny, written as that gateway writes it in its own \
            policy (source = its own side), e.g. --initiator "ip 198.18.1.0/24 198.18.0.0/16" \
            --responder "tcp 198.18.2.0/24 eq 443 198.18.0.0/16". Prints the intersection in the \
            initiator's view, and with --packet whether the packet lies inside.
            """
    )

    @Option(help: "The initiator's entry, e.g. \"ip 198.18.1.0/24 198.18.2.0/24\".")
    var initiator: String

    @Option(help: "The responder's entry, written from the responder's view.")
    var responder: String

    @Option(help: "A packet: \"<protocol> <src>[:<port>] <dst>[:<port>]\", IPv6 in brackets.")
    var packet: String?

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        _ = try parseSelector(initiator, option: "--initiator")
        _ = try parseSelector(responder, option: "--responder")
        if let packet { _ = try parsePacket(packet) }
    }

    func run() throws {
        let initiatorEntry = try parseSelector(initiator, option: "--initiator")
        let responderEntry = try parseSelector(responder, option: "--responder")
        let packet = try self.packet.map { try parsePacket($0) }
        let family = packet?.family ?? initiatorEntry.family ?? responderEntry.family ?? .v4
        let initiatorProxy = initiatorEntry.proxy(as: .initiator, family: family)
        let responderProxy = responderEntry.proxy(as: .responder, family: family)
        var intersection: Proxy?
        if let initiatorProxy, let responderProxy {
            intersection = initiatorProxy.intersection(responderProxy)
        }
        let inside = packet.map { intersection?.contains($0) ?? false }
        let child = packet.flatMap { p in intersection.flatMap { TrafficSelector.proposal(intersection: $0, packet: p, excluding: []) } }

        if json {
            var members: [(String, JSON)] = [("empty", .bool(intersection == nil))]
            if let intersection { members += intersection.jsonMembers }
            if let inside { members.append(("packet_inside", .bool(inside))) }
            if let child {
                let (local, remote) = TrafficSelectors.strongSwan(child)
                members.append(("child", .object([("local_ts", .string(local)), ("remote_ts", .string(remote))])))
            }
            print(JSON.object(members).rendered)
            return
        }
        func show(_ proxy: Proxy?) -> String { proxy.map(\.description) ?? "none for \(family)" }
        print("initiator proxy:  \(show(initiatorProxy))")
        print("responder proxy:  \(show(responderProxy))")
        print("intersection:     \(intersection.map(\.description) ?? "empty")")
        if let packet, let inside {
            print("packet:           \(packet) \(inside ? "lies inside" : "lies OUTSIDE")")
            if let child {
                let (local, remote) = TrafficSelectors.strongSwan(child)
                print("child for IKE:    \(local) === \(remote)")
            }
            if let initiatorProxy, let responderProxy {
                switch HalfProxyMerge.merge(initiator: initiatorProxy, responder: responderProxy, packet: packet) {
                case .success(let merged): print("TED v2 merge:     works: \(merged)")
                case .failure(let why): print("TED v2 merge:     fails: \(why)")
                }
            }
        }
    }
}
