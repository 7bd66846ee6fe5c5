import NIOCore
import Synchronization
import TEDEngine

/// Reads this gateway's own addresses again every `interval` and hands a change to the
/// engines: an address added after start (a VRRP address taken over, a new interface) is
/// refused as a peer identity from then on, one removed is no longer.
final class OwnAddressWatch: Sendable {
    static let interval: TimeAmount = .seconds(2)
    private let task: RepeatedTask

    init(loop: any EventLoop, interval: TimeAmount = OwnAddressWatch.interval, initial: PeerAddressCheck,
         read: @escaping @Sendable () -> PeerAddressCheck, changed: @escaping @Sendable (PeerAddressCheck) -> Void) {
        let last = Mutex(initial)
        task = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            let now = read()
            let isNew = last.withLock { old in
                defer { old = now }
                return old != now
            }
            if isNew { changed(now) }
        }
    }

    func stop() { task.cancel() }
}
