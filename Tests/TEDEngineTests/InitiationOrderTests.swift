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
        high.answered(self.low, now: answered)
        low.answered(self.high, now: answered)
        #expect(high.shouldWait(for: self.low, own: self.high, probed: probed, now: now))
        #expect(!low.shouldWait(for: self.high, own: self.low, probed: probed, now: now))
    }

    /// A gateway that answered the peer's probe before sending its own waits, whatever the
    /// addresses: the peer had ended its discovery before this probe reached it, and starts IKE.
    @Test func aGatewayThatAnsweredBeforeProbingWaits() {
        var low = InitiationOrder()
        low.answered(high, now: t0)
        #expect(low.shouldWait(for: high, own: self.low, probed: t0 + .milliseconds(1), now: t0 + .milliseconds(3)))
    }

    @Test func anAnswerCountsOnlyWithinItsWindow() {
        var order = InitiationOrder()
        order.answered(low, now: t0)
        #expect(order.shouldWait(for: low, own: high, probed: t0, now: t0 + InitiationOrder.answerWindow))
        #expect(!order.shouldWait(for: low, own: high, probed: t0, now: t0 + InitiationOrder.answerWindow + .nanoseconds(1)))
        #expect(!InitiationOrder().shouldWait(for: low, own: high, probed: t0, now: t0), "no answer, no wait")
    }

    @Test func theOldestAnswersGoPastTheCapacity() {
        var order = InitiationOrder(capacity: 2)
        for last in 1...3 { order.answered(IPAddress(v4: UInt32(last)), now: t0) }
        #expect(!order.shouldWait(for: IPAddress(v4: 1), own: high, probed: t0, now: t0))
        #expect(order.shouldWait(for: IPAddress(v4: 3), own: high, probed: t0, now: t0))
    }
}
