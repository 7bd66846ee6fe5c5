import Foundation
import NIOCore
import TEDBenchSupport
import TEDEngine
import TEDModel
import TEDWire

/// What one run simulates.
struct SimulationSettings {
    var hubs = 10
    var branches = 100
    /// Other branches each branch talks to (besides every hub).
    var branchPeers = 20
    var seed: UInt64 = 1
    /// Probability that any one datagram (probe, challenge, response) is lost.
    var loss = 0.0
    /// Flows start at uniformly random times in [0, window).
    var window: Int64 = 60 * Simulation.second
    /// A flow without a tunnel sends its next packet this long after the last one.
    var packetInterval: Int64 = Simulation.second
    /// IKE is a delay: this plus two round trips between the peers.
    var ikeBase: Int64 = 30 * Simulation.millisecond
    var cacheTTL: TimeAmount = DiscoverySettings.defaultCacheTTL
    var negativeTTL: TimeAmount = DiscoverySettings.defaultNegativeTTL
    var retries = DiscoverySettings.defaultRetries
    /// The hubs' responder global budget (`responder.global-rate`/`global-burst`); the
    /// branches keep the default.
    var hubGlobalRate = ResponderSettings.defaultGlobalRate

    /// The initiators' settings: the daemon's defaults (`Configuration.discoverySettings`,
    /// probes carry the proxy address) but for the TTLs and retries asked for.
    func discovery(peerCheck: PeerAddressCheck) -> DiscoverySettings {
        DiscoverySettings(retries: retries,
                          retransmitSchedule: DiscoverySettings.doubling(from: DiscoverySettings.defaultFirstWait,
                                                                         retries: retries),
                          cacheTTL: cacheTTL, negativeTTL: negativeTTL, sendProxyAddress: true, peerCheck: peerCheck)
    }
    /// When hub 0 loses all its state; nil: no restart.
    var restartAt: Int64?
    /// Churn: each tunnel goes down after an exponentially distributed life of this mean
    /// (DPD, a peer's reboot, a rekey that failed), from `window` until `churnUntil`; nil: never.
    var tunnelLife: Int64?
    var churnUntil: Int64 = 0
    /// Churn: the measured span is [measureFrom, churnUntil).
    var measureFrom: Int64 = 0
    /// Whether a tunnel going down keeps its discovery cached. The daemon forgets the peer's
    /// discoveries (`HandoffMachine` `.forget(peer:intersection:)`), so false is ted as it is.
    var keepCacheOnDown = false
    /// No event after this is simulated.
    var horizon: Int64 = 3_600 * Simulation.second
}

/// One (source gateway, destination gateway) pair: a client behind the source talking to a
/// server behind the destination, one packet per `packetInterval` until a tunnel carries it.
struct Flow {
    let source: Int
    let destination: Int
    let packet: Packet
    let start: Int64
    /// When this round started: `start`, or the hub restart for flows to the restarted hub.
    var roundStart: Int64
    var tunnelAt: Int64?
    /// When this gateway's own discovery for it succeeded (nil: the tunnel came from the peer).
    var discoveredAt: Int64?
    var discoveryRTT: Int64?
    var timeouts = 0
    var packets = 0
    var probes = 0
}

/// Per gateway totals the simulator counts (the engines count the rest).
struct GatewayTally {
    var probesSent = 0
    var probeBytes = 0
    var responsesReceived = 0
    var challengesReceived = 0
    var ikeNegotiations = 0
}

/// What the restarted hub did in one second after its restart.
struct SecondAtHub {
    var probes = 0
    var answers = 0
    var provenAnswers = 0
    var challenges = 0
    var refusals: [DropReason: Int] = [:]
    var tunnelsBack = 0
}

/// A deterministic discrete-event run of the mesh: real `Initiator`s and `Responder`s, a
/// modelled network (latency by region, loss) and IKE as a delay. Time moves only from
/// event to event; the seed decides everything.
struct Simulation {
    static let millisecond: Int64 = 1_000_000
    static let second: Int64 = 1_000_000_000
    /// A fixed origin for the engines' clock (any value works; none is read from the host).
    static let origin = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    enum Event {
        case packet(flow: Int)
        case probe(bytes: ByteBuffer, to: Int, source: IPAddress, port: UInt16, from: Int)
        case reply(bytes: ByteBuffer, to: Int, source: IPAddress, port: UInt16)
        case tick(gateway: Int)
        case ikeDone(Int, Int)
        case restart
        case tunnelDown(pair: Int, generation: Int)
        case mark
    }

    let settings: SimulationSettings
    let mesh: Mesh
    private(set) var flows: [Flow] = []
    private(set) var initiators: [Initiator] = []
    private(set) var responders: [Responder] = []
    private(set) var tallies: [GatewayTally]
    /// Counters of the restarted hub's responder before its restart.
    private(set) var respondersBeforeRestart: ResponderCounters?
    private(set) var perSecond: [SecondAtHub] = []
    private(set) var violations: [String] = []
    private(set) var ignored: [IgnoreReason: Int] = [:]
    private(set) var rejected = 0
    private(set) var resourceFailures = 0
    private(set) var failedCachedPackets = 0
    private(set) var datagramsLost = 0
    private(set) var passedOn = 0
    private(set) var events = 0
    private(set) var now: Int64 = 0
    /// The largest reply/probe size ratio seen, for answers and for challenges.
    private(set) var largestAnswerRatio = 0.0
    private(set) var largestChallengeRatio = 0.0
    /// When every flow of the cold start first had its tunnel.
    private(set) var coldStartDone: Int64?
    private(set) var restartDone: Int64?
    /// The cold start as it stood when the hub restarted (a hub-restart run resets flows).
    private(set) var coldStartFlows: [Flow]?
    private(set) var coldStartTallies: [GatewayTally]?
    private(set) var coldStartResponders: [ResponderCounters]?
    /// Churn: the tallies and initiator counters when the measured hour began, and what happened in it.
    private(set) var markedTallies: [GatewayTally]?
    private(set) var markedInitiators: [InitiatorCounters]?
    /// Branches back later than `Report.starvationBound` after the restart.
    private(set) var lateBranches = 0
    private(set) var endTallies: [GatewayTally]?
    private(set) var endInitiators: [InitiatorCounters]?
    private(set) var tunnelsDown = 0
    /// Churn: from a tunnel going down to the flow's tunnel up again, for every flow it carried.
    private(set) var recoveries: [Int64] = []
    private(set) var tunnelsDownInWindow = 0

    private var queue = EventQueue<Event>()
    private var rng: SplitMix64
    private var networkRNG: SplitMix64
    private var flowOf: [Int: Int] = [:]
    private var tunnels: Set<Int> = []
    private var negotiating: Set<Int> = []
    private var scheduledTick: [Int64?]
    private var open = 0
    private var generations: [Int: Int] = [:]
    private var churnRNG: SplitMix64

    init(_ settings: SimulationSettings) {
        self.settings = settings
        mesh = Mesh(hubs: settings.hubs, branches: settings.branches)
        rng = SplitMix64(seed: settings.seed)
        networkRNG = SplitMix64(seed: settings.seed ^ 0x6e65_7477_6f72_6b00)
        churnRNG = SplitMix64(seed: settings.seed ^ 0x6368_7572_6e00_0000)
        tallies = Array(repeating: GatewayTally(), count: mesh.count)
        scheduledTick = Array(repeating: nil, count: mesh.count)
        for gateway in 0..<mesh.count {
            initiators.append(makeInitiator(gateway))
            responders.append(makeResponder(gateway))
        }
        for branch in settings.hubs..<mesh.count {
            var others = Array(settings.hubs..<mesh.count).filter { $0 != branch }
            others.shuffle(using: &rng)
            for destination in Array(0..<settings.hubs) + others.prefix(settings.branchPeers).sorted() {
                let start = Int64.random(in: 0..<settings.window, using: &rng)
                let packet = Packet(proto: .tcp, source: mesh.host(branch, 10), destination: mesh.host(destination, 20),
                                    sourcePort: 40_000, destinationPort: 443)!
                flowOf[Self.key(branch, destination)] = flows.count
                queue.push(.packet(flow: flows.count), at: start)
                flows.append(Flow(source: branch, destination: destination, packet: packet, start: start, roundStart: start))
            }
        }
        open = flows.count
        if let restart = settings.restartAt { queue.push(.restart, at: restart) }
        if settings.tunnelLife != nil {
            queue.push(.mark, at: settings.measureFrom)
            queue.push(.mark, at: settings.churnUntil)
        }
    }

    private func makeInitiator(_ gateway: Int) -> Initiator {
        let settings = self.settings.discovery(peerCheck: PeerAddressCheck(own: [mesh.identity(gateway)]))
        return Initiator(policy: policy(gateway), identity: Identity(address: mesh.identity(gateway), port: 0),
                         settings: settings)
    }

    /// The daemon's defaults (`Configuration.responderSettings`): fresh random secrets, challenges on.
    private mutating func makeResponder(_ gateway: Int) -> Responder {
        let settings = ResponderSettings(secret: .random(using: &rng),
                                         globalRate: mesh.isHub(gateway) ? self.settings.hubGlobalRate : ResponderSettings.defaultGlobalRate,
                                         peerCheck: PeerAddressCheck(own: [mesh.identity(gateway)]),
                                         challenges: true, challengeSecret: .random(using: &rng))
        return Responder(policy: policy(gateway), identity: Identity(address: mesh.identity(gateway), port: 0),
                         settings: settings)
    }

    /// `permit ip <own site> 10.0.0.0/8`: everything of the mesh, as initiator and responder.
    private func policy(_ gateway: Int) -> Policy {
        let site = mesh.site(gateway)
        do {
            return try Policy(lines: ["permit ip \(site.address)/24 10.0.0.0/8"])
        } catch {
            preconditionFailure("the simulator's own policy line does not parse: \(error)")
        }
    }

    private static func key(_ source: Int, _ destination: Int) -> Int { source << 20 | destination }
    private static func pair(_ a: Int, _ b: Int) -> Int { min(a, b) << 20 | max(a, b) }
    private var deadline: NIODeadline { Self.origin + .nanoseconds(now) }

    // MARK: - The loop

    /// Runs until every flow has its tunnel (and the restart, if any, is over) or the horizon.
    mutating func run() {
        while let (time, event) = queue.pop() {
            guard time <= settings.horizon else { break }
            now = time
            events += 1
            switch event {
            case .packet(let flow): packet(flow)
            case .probe(let bytes, let to, let source, let port, let from): probe(bytes, to: to, source: source, port: port,
                                                                                  from: from)
            case .reply(let bytes, let to, let source, let port): reply(bytes, to: to, source: source, port: port)
            case .tick(let gateway): tick(gateway, at: time)
            case .ikeDone(let a, let b): tunnelUp(a, b)
            case .restart: restart()
            case .tunnelDown(let pair, let generation): tunnelDown(pair, generation: generation)
            case .mark:
                if markedTallies == nil {
                    markedTallies = tallies
                    markedInitiators = initiators.map(\.counters)
                } else {
                    endTallies = tallies
                    endInitiators = initiators.map(\.counters)
                }
            }
            if open == 0, settings.restartAt.map({ now >= $0 }) ?? true, now >= settings.churnUntil { break }
        }
        for (index, flow) in flows.enumerated() where flow.tunnelAt == nil {
            violations.append("flow \(index) (gateway \(flow.source) to \(flow.destination)) has no tunnel at the end"
                + " after \(flow.probes) probes, \(flow.timeouts) timeouts")
        }
        if let restart = settings.restartAt {
            if respondersBeforeRestart == nil {
                violations.append("the run ended before the hub restart (horizon \(settings.horizon / Self.second) s)")
            }
            // No starvation: without loss every branch is back within the bound; with loss a
            // branch whose discoveries are lost twice in a row may not be (counted, reported).
            let bound = Report.starvationBound(settings)
            let late = flows.filter { $0.destination == 0 && ($0.tunnelAt.map { $0 - restart > bound } ?? false) }
            lateBranches = late.count
            if settings.loss == 0, let first = late.first {
                violations.append("\(late.count) branches came back more than \(Report.seconds(bound)) after the restart,"
                    + " gateway \(first.source) after \(Report.seconds(first.tunnelAt! - restart))")
            }
        }
    }

    private mutating func packet(_ index: Int) {
        var flow = flows[index]
        guard flow.tunnelAt == nil else { return }
        if tunnels.contains(Self.pair(flow.source, flow.destination)) {
            // The peer's tunnel carries this flow too: IKE made it for both directions.
            flows[index].tunnelAt = now
            finish(index)
            return
        }
        flow.packets += 1
        flows[index] = flow
        queue.push(.packet(flow: index), at: now + settings.packetInterval)
        let action = initiators[flow.source].packet(flow.packet, now: deadline, rng: &rng)
        handle(action, at: flow.source)
        touch(flow.source)
    }

    private mutating func tick(_ gateway: Int, at time: Int64) {
        guard scheduledTick[gateway] == time else { return }
        scheduledTick[gateway] = nil
        for action in initiators[gateway].tick(now: deadline) { handle(action, at: gateway) }
        touch(gateway)
    }

    /// Schedules the gateway's next `tick` when its initiator has something due earlier.
    private mutating func touch(_ gateway: Int) {
        guard let next = initiators[gateway].nextDeadline else { return }
        let time = max(next.uptimeNanoseconds.asInt64 - Self.origin.uptimeNanoseconds.asInt64, now + 1)
        if let scheduled = scheduledTick[gateway], scheduled <= time { return }
        scheduledTick[gateway] = time
        queue.push(.tick(gateway: gateway), at: time)
    }

    private mutating func handle(_ action: InitiatorAction, at gateway: Int) {
        switch action {
        case .send(let probe): send(probe, from: gateway)
        case .discovered(let discovery):
            guard let destination = mesh.gateway(ofSite: discovery.packet.destination),
                  let index = flowOf[Self.key(gateway, destination)] else {
                violations.append("gateway \(gateway) discovered \(discovery) for no flow of its own")
                return
            }
            guard discovery.peer.address == mesh.identity(destination) else {
                violations.append("gateway \(gateway) discovered \(discovery.peer) for \(discovery.packet);"
                    + " gateway \(destination) protects it")
                return
            }
            if flows[index].discoveredAt == nil || flows[index].discoveredAt! < flows[index].roundStart {
                flows[index].discoveredAt = now
                flows[index].discoveryRTT = discovery.rtt.nanoseconds
            }
            negotiate(gateway, destination)
        case .cached(let discovery):
            if let destination = mesh.gateway(ofIdentity: discovery.peer.address) { negotiate(gateway, destination) }
        case .failed(let failure):
            if failure.reason == .resourceLimit { resourceFailures += 1 }
            if let destination = mesh.gateway(ofSite: failure.packet.destination),
               let index = flowOf[Self.key(gateway, destination)] {
                if failure.reason == .timeout { flows[index].timeouts += 1 }
            }
            if failure.reason != .timeout, failure.reason != .resourceLimit {
                violations.append("gateway \(gateway): \(failure)")
            }
        case .failedCached: failedCachedPackets += 1
        case .joined: break
        case .ignored(let reason): ignored[reason, default: 0] += 1
        case .rejected(let reason):
            rejected += 1
            violations.append("gateway \(gateway) rejected a datagram: \(reason)")
        case .notProtected(let packet): violations.append("gateway \(gateway): \(packet) is not protected")
        }
    }

    /// A probe travels the data path towards P's destination: the first gateway on it whose
    /// policy covers P is the destination's own (every site is behind exactly one gateway).
    private mutating func send(_ probe: OutgoingProbe, from gateway: Int) {
        tallies[gateway].probesSent += 1
        tallies[gateway].probeBytes += probe.bytes.readableBytes
        if let destination = mesh.gateway(ofSite: probe.destination),
           let index = flowOf[Self.key(gateway, destination)] {
            flows[index].probes += 1
        }
        guard let destination = mesh.gateway(ofSite: probe.destination) else {
            violations.append("gateway \(gateway) probed \(probe.destination), outside the mesh")
            return
        }
        deliver(.probe(bytes: probe.bytes, to: destination, source: probe.source, port: probe.sourcePort, from: gateway),
                from: gateway, to: destination)
    }

    private mutating func deliver(_ event: Event, from a: Int, to b: Int) {
        if settings.loss > 0, Double.random(in: 0..<1, using: &networkRNG) < settings.loss {
            datagramsLost += 1
            return
        }
        let jitter = Int64.random(in: 0...Self.millisecond, using: &networkRNG)
        queue.push(event, at: now + mesh.oneWayNanoseconds(a, b) + jitter)
    }

    private mutating func probe(_ bytes: ByteBuffer, to gateway: Int, source: IPAddress, port: UInt16, from: Int) {
        let restarted = settings.restartAt.map { now >= $0 } == true && gateway == 0
        let second = restarted ? Int((now - settings.restartAt!) / Self.second) : -1
        if restarted {
            while perSecond.count <= second { perSecond.append(SecondAtHub()) }
            perSecond[second].probes += 1
        }
        let action = responders[gateway].received(bytes, from: source, port: port, now: deadline)
        switch action {
        case .drop(let reason):
            if restarted { perSecond[second].refusals[reason, default: 0] += 1 }
            if reason.passesOn { passedOn += 1 }
        case .reply(let reply, let to, let toPort, let kind):
            let ratio = Double(reply.readableBytes) / Double(bytes.readableBytes)
            switch kind {
            case .challenge:
                largestChallengeRatio = max(largestChallengeRatio, ratio)
                if reply.readableBytes > bytes.readableBytes {
                    violations.append("a challenge of \(reply.readableBytes) bytes answered a probe of \(bytes.readableBytes)")
                }
                if restarted { perSecond[second].challenges += 1 }
            case .answer, .provenAnswer:
                largestAnswerRatio = max(largestAnswerRatio, ratio)
                if reply.readableBytes > 3 * bytes.readableBytes {
                    violations.append("a reply of \(reply.readableBytes) bytes answered a probe of \(bytes.readableBytes)")
                }
                if restarted {
                    if kind == .answer { perSecond[second].answers += 1 } else { perSecond[second].provenAnswers += 1 }
                }
            }
            guard let target = mesh.gateway(ofIdentity: to), toPort == ISAKMP.port else {
                violations.append("gateway \(gateway) replied to \(to):\(toPort), no gateway's identity")
                return
            }
            // The responder reuses its reply buffer: the network gets a copy of its own.
            let copy = ByteBuffer(bytes: reply.readableBytesView)
            deliver(.reply(bytes: copy, to: target, source: mesh.identity(gateway), port: ISAKMP.port),
                    from: gateway, to: target)
        }
    }

    private mutating func reply(_ bytes: ByteBuffer, to gateway: Int, source: IPAddress, port: UInt16) {
        if case .challenge = try? TEDCodec.decode(bytes) {
            tallies[gateway].challengesReceived += 1
        } else {
            tallies[gateway].responsesReceived += 1
        }
        handle(initiators[gateway].received(bytes, from: source, port: port, now: deadline), at: gateway)
        touch(gateway)
    }

    /// IKE between the two gateways: a delay of `ikeBase` plus two round trips, never lost.
    private mutating func negotiate(_ a: Int, _ b: Int) {
        let pair = Self.pair(a, b)
        guard !tunnels.contains(pair), !negotiating.contains(pair) else { return }
        negotiating.insert(pair)
        tallies[a].ikeNegotiations += 1
        tallies[b].ikeNegotiations += 1
        queue.push(.ikeDone(a, b), at: now + settings.ikeBase + 4 * mesh.oneWayNanoseconds(a, b))
    }

    private mutating func tunnelUp(_ a: Int, _ b: Int) {
        let pair = Self.pair(a, b)
        guard negotiating.remove(pair) != nil else { return }
        tunnels.insert(pair)
        if let life = settings.tunnelLife {
            // Exponential with mean `life`: -ln(U) * life, U in (0, 1].
            let u = 1 - Double.random(in: 0..<1, using: &churnRNG)
            let down = now + max(1, Int64((-log(u) * Double(life)).rounded()))
            if down < settings.churnUntil {
                let generation = generations[pair, default: 0] + 1
                generations[pair] = generation
                queue.push(.tunnelDown(pair: pair, generation: generation), at: down)
            }
        }
        for (source, destination) in [(a, b), (b, a)] {
            guard let index = flowOf[Self.key(source, destination)], flows[index].tunnelAt == nil else { continue }
            flows[index].tunnelAt = now
            finish(index)
        }
    }

    private mutating func finish(_ index: Int) {
        open -= 1
        if settings.tunnelLife != nil, flows[index].roundStart > flows[index].start {
            recoveries.append(now - flows[index].roundStart)
        }
        if let restart = settings.restartAt, now >= restart, flows[index].destination == 0 {
            let second = Int((now - restart) / Self.second)
            while perSecond.count <= second { perSecond.append(SecondAtHub()) }
            perSecond[second].tunnelsBack += 1
        }
        guard open == 0 else { return }
        if settings.restartAt.map({ now >= $0 }) == true { restartDone = now } else if coldStartDone == nil { coldStartDone = now }
    }

    /// A tunnel went down: both daemons forget the other's discoveries (unless the run keeps
    /// them), and each flow it carried sends its next packet within one packet interval.
    private mutating func tunnelDown(_ pair: Int, generation: Int) {
        guard generations[pair] == generation, tunnels.remove(pair) != nil else { return }
        tunnelsDown += 1
        if markedTallies != nil, endTallies == nil { tunnelsDownInWindow += 1 }
        let a = pair >> 20, b = pair & 0xf_ffff
        if !settings.keepCacheOnDown {
            initiators[a].forget(peer: mesh.identity(b))
            initiators[b].forget(peer: mesh.identity(a))
            touch(a)
            touch(b)
        }
        for (source, destination) in [(a, b), (b, a)] {
            guard let index = flowOf[Self.key(source, destination)], flows[index].tunnelAt != nil else { continue }
            flows[index].tunnelAt = nil
            flows[index].roundStart = now
            open += 1
            queue.push(.packet(flow: index), at: now + Int64.random(in: 0..<settings.packetInterval, using: &churnRNG))
        }
    }

    /// Hub 0 loses all state: new engines with fresh secrets, every tunnel to it gone. Each
    /// branch's daemon forgets the discoveries naming it (the tunnel went down), and the
    /// branch's next packet to the hub, within one packet interval, starts a discovery.
    private mutating func restart() {
        if coldStartDone == nil {
            violations.append("hub 0 restarted before the cold start was over (\(open) flows without a tunnel)")
        }
        respondersBeforeRestart = responders[0].counters
        coldStartFlows = flows
        coldStartTallies = tallies
        coldStartResponders = responders.map(\.counters)
        initiators[0] = makeInitiator(0)
        responders[0] = makeResponder(0)
        scheduledTick[0] = nil
        for (index, flow) in flows.enumerated() where flow.destination == 0 {
            tunnels.remove(Self.pair(flow.source, 0))
            initiators[flow.source].forget(peer: mesh.identity(0))
            guard flows[index].tunnelAt != nil else { continue }
            flows[index].tunnelAt = nil
            flows[index].roundStart = now
            flows[index].timeouts = 0
            flows[index].probes = 0
            flows[index].packets = 0
            open += 1
            queue.push(.packet(flow: index), at: now + Int64.random(in: 0..<settings.packetInterval, using: &rng))
        }
    }
}

extension UInt64 {
    var asInt64: Int64 { Int64(bitPattern: self) }
}
