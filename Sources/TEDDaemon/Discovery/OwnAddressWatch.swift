import NIOCore
import Synchronization
import TEDEngine

/// Reads this gateway's own addresses again every `interval` and hands a change to the
/// engines: an address added after start (a VRRP address taken over, a new interface) is
/// refused as a peer identity from then on, one removed is no longer. A read that fails
/// (nil) changes nothing: the last good set stays, never an empty one that would let
/// identities naming this gateway through.
final class OwnAddressWatch: Sendable {
    static let interval: TimeAmount = .seconds(2)
    private let task: RepeatedTask
    /// The last set read, or nil once stopped: a run already under way when `stop` is
    /// called hands nothing over.
    private let last: Last

    private final class Last: Sendable {
        let check: Mutex<PeerAddressCheck?>
        init(_ check: PeerAddressCheck) { self.check = Mutex(check) }
    }

    init(loop: any EventLoop, interval: TimeAmount = OwnAddressWatch.interval, initial: PeerAddressCheck,
         read: @escaping @Sendable () -> PeerAddressCheck?, changed: @escaping @Sendable (PeerAddressCheck) -> Void) {
        let last = Last(initial)
        self.last = last
        task = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            guard let now = read() else { return }
            let isNew = last.check.withLock { old in
                guard let previous = old, previous != now else { return false }
                old = now
                return true
            }
            if isNew { changed(now) }
        }
    }

    func stop() {
        last.check.withLock { $0 = nil }
        task.cancel()
    }
}
