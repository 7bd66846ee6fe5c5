import NIOCore
import Testing
import TEDEngine
import TEDModel

/// Who starts IKE when two gateways discover each other at once (issue 24).
@Suite struct InitiationOrderTests {
    let low = IPAddress("198.51.100.2")!, high = IPAddress("198.51.100.9")!
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    /// Probes that crossed (each gateway probed before answering the other): only the
    /// higher address waits, so two gateways never wait for each other.
    @Test func crossedProbesLeaveTheIKESAToTheLowerAddress() {
        var high = InitiationOrder(), low = InitiationOrder()
        let probed = t0, answered = t0 + .milliseconds(5), now = t0 + .milliseconds(10)
        high.answered(self.low, proven: false, now: answered)
        low.answered(self.high, proven: false, now: answered)
        #expect(waits(&high, for: self.low, own: self.high, probed: probed, now: now))
        #expect(!waits(&low, for: self.high, own: self.low, probed: probed, now: now))
    }

    /// A gateway that answered the peer's probe before sending its own waits, whatever the
    /// addresses: the peer had ended its discovery before this probe reached it, and starts IKE.
    @Test func aGatewayThatAnsweredBeforeProbingWaits() {
        var low = InitiationOrder()
        low.answered(high, proven: false, now: t0)
        #expect(waits(&low, for: high, own: self.low, probed: t0 + .milliseconds(1), now: t0 + .milliseconds(3)))
    }

    @Test func anAnswerCountsOnlyWithinItsWindow() {
        var order = InitiationOrder()
        order.answered(low, proven: false, now: t0)
        #expect(waits(&order, for: low, own: high, probed: t0, now: t0 + InitiationOrder.answerWindow))
        #expect(!waits(&order, for: low, own: high, probed: t0, now: t0 + InitiationOrder.answerWindow + .nanoseconds(1)))
        var none = InitiationOrder()
        #expect(!waits(&none, for: low, own: high, probed: t0, now: t0), "no answer, no wait")
    }

    @Test func theOldestAnswersGoPastTheCapacity() {
        var order = InitiationOrder(capacity: 2)
        for last in 1...3 { order.answered(IPAddress(v4: UInt32(last)), proven: false, now: t0) }
        #expect(!waits(&order, for: IPAddress(v4: 1), own: high, probed: t0, now: t0))
        #expect(waits(&order, for: IPAddress(v4: 3), own: high, probed: t0, now: t0))
    }

    /// A spoofer can keep an unproven answer to a peer fresh: this gateway then waits for
    /// that peer once per `unprovenWaitInterval`, not at every hand-off; a proven answer
    /// (its probe echoed a good cookie) always counts.
    @Test func anUnprovenAnswerIsWaitedOnOncePerInterval() {
        var order = InitiationOrder()
        var now = t0
        for _ in 0..<3 {
            order.answered(low, proven: false, now: now)
            now = now + .milliseconds(10)
        }
        #expect(waits(&order, for: low, own: high, probed: t0, now: now))
        for step in 1...5 {
            let later = now + .seconds(Int64(step * 10))
            order.answered(low, proven: false, now: later)
            #expect(!waits(&order, for: low, own: high, probed: later, now: later + .milliseconds(1)), "\(step)")
        }
        let past = now + InitiationOrder.unprovenWaitInterval
        order.answered(low, proven: false, now: past)
        #expect(waits(&order, for: low, own: high, probed: past, now: past + .milliseconds(1)))
        // Proven answers are waited on every time.
        for step in 1...3 {
            let later = past + .seconds(Int64(step))
            order.answered(low, proven: true, now: later)
            #expect(waits(&order, for: low, own: high, probed: later, now: later + .milliseconds(1)), "proven \(step)")
        }
    }
}

/// `shouldWait` records what it granted, so it is mutating; `#expect` cannot call that in place.
private func waits(_ order: inout InitiationOrder, for peer: IPAddress, own: IPAddress, probed: NIODeadline,
                   now: NIODeadline) -> Bool {
    order.shouldWait(for: peer, own: own, probed: probed, now: now)
}
