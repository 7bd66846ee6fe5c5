import NIOCore

/// Where the hand-off's time comes from. `system`: the clock, and a timer that ticks the
/// hand-off at `HandoffMachine`'s next deadline. A test's clock instead arms no timer: the
/// test moves its time and calls `IKEHandoff.tick()` itself, so nothing waits.
public struct HandoffClock: Sendable {
    let now: @Sendable () -> NIODeadline
    /// Whether the hand-off arms a timer for its next deadline.
    let armsTimer: Bool

    public static let system = HandoffClock(now: { .now() }, armsTimer: true)

    init(now: @escaping @Sendable () -> NIODeadline, armsTimer: Bool) {
        self.now = now
        self.armsTimer = armsTimer
    }
}
