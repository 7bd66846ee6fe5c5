import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Admission for local servers (control socket, metrics): at most `maxConnections` at
/// once, each closed `lifetime` after it was accepted whatever it does (an idle or slow
/// client cannot hold a descriptor), and on a UNIX socket only peers whose credentials
/// (`SO_PEERCRED`) are root, ted's own user, or in `groupID`.
///
/// At the cap a new connection is admitted and an older one is closed (`ConnectionSlots`):
/// refusing the newcomer would let a client that opens the cap's worth of idle connections
/// shut out every scrape and every `ted` command until their lifetime runs out.
final class ConnectionGuard: Sendable {
    let maxConnections: Int
    let lifetime: TimeAmount
    let groupID: gid_t?
    let checkCredentials: Bool
    private let state: NIOLockedValueBox<State>

    private struct State {
        var slots: ConnectionSlots<ObjectIdentifier>
        var channels: [ObjectIdentifier: any Channel] = [:]
        var refused = 0
        var evicted = 0
    }

    init(maxConnections: Int, lifetime: TimeAmount, checkCredentials: Bool, groupID: gid_t? = nil) {
        self.maxConnections = maxConnections
        self.lifetime = lifetime
        self.checkCredentials = checkCredentials
        self.groupID = groupID
        state = NIOLockedValueBox(State(slots: ConnectionSlots(capacity: maxConnections)))
    }

    /// Connections refused so far (with the wrong credentials).
    var refused: Int { state.withLockedValue { $0.refused } }
    /// Connections closed so far to make room for a newer one.
    var evicted: Int { state.withLockedValue { $0.evicted } }
    /// Connections open now.
    var current: Int { state.withLockedValue { $0.slots.count } }

    /// Succeeds for an admitted connection (making room for it at the cap); fails, so NIO
    /// closes the connection, for a peer that is not allowed. Every accepted connection's
    /// deadline is armed first.
    func admit(_ channel: any Channel) -> EventLoopFuture<Void> {
        let deadline = channel.eventLoop.scheduleTask(in: lifetime) { channel.close(promise: nil) }
        channel.closeFuture.whenComplete { _ in deadline.cancel() }
        // Credentials before a slot: a peer that is not allowed never closes one that is.
        return allowed(channel).flatMap { why in
            if let why { return self.refuse(channel, why) }
            self.take(channel)
            return channel.eventLoop.makeSucceededVoidFuture()
        }
    }

    /// Whether `channel` is answering a complete request (and so is closed to make room only
    /// when every connection is).
    func setBusy(_ channel: any Channel, _ busy: Bool) {
        state.withLockedValue { $0.slots.setBusy(ObjectIdentifier(channel), busy) }
    }

    /// Root, ted's own user, or the configured group.
    func allows(uid: uid_t, gid: gid_t) -> Bool {
        uid == 0 || uid == geteuid() || (groupID.map { $0 == gid } ?? false)
    }

    /// Why `channel`'s peer is refused, or nil.
    private func allowed(_ channel: any Channel) -> EventLoopFuture<String?> {
        guard checkCredentials else { return channel.eventLoop.makeSucceededFuture(nil) }
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture("no credentials")
        }
        return provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
            .map { (credentials: PeerCredentials) in
                self.allows(uid: credentials.uid, gid: credentials.gid) ? nil : "peer not allowed"
            }
    }

    private func take(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let victim = state.withLockedValue { state -> (any Channel)? in
            state.channels[id] = channel
            guard let oldest = state.slots.admit(id) else { return nil }
            state.evicted += 1
            return state.channels.removeValue(forKey: oldest)
        }
        victim?.close(promise: nil)
        // Holds `channel` until its slot is freed, so no newer channel can reuse its identifier.
        channel.closeFuture.whenComplete { _ in
            self.state.withLockedValue { state in
                state.slots.release(ObjectIdentifier(channel))
                state.channels[ObjectIdentifier(channel)] = nil
            }
        }
    }

    private func refuse(_ channel: any Channel, _ why: String) -> EventLoopFuture<Void> {
        state.withLockedValue { $0.refused += 1 }
        return channel.eventLoop.makeFailedFuture(ControlSocketError(why))
    }
}

/// The connections that hold a guard's slots, oldest first: a pure, bounded model of which
/// one to close when a new connection arrives at the cap.
///
/// The oldest idle connection goes first (idle: not answering a complete request, so
/// closing it loses no reply); when every one is busy, the oldest. A newcomer is never
/// refused, so whoever holds the slots, the next scrape or command gets in.
struct ConnectionSlots<ID: Hashable> {
    let capacity: Int
    private var held: [(id: ID, busy: Bool)] = []

    /// `capacity` is at least 1.
    init(capacity: Int) {
        self.capacity = max(capacity, 1)
    }

    var count: Int { held.count }

    /// Gives `id` a slot; at the cap first frees one and returns the connection to close.
    mutating func admit(_ id: ID) -> ID? {
        var evicted: ID?
        if held.count >= capacity {
            let index = held.firstIndex { !$0.busy } ?? held.startIndex
            evicted = held.remove(at: index).id
        }
        held.append((id, false))
        return evicted
    }

    mutating func setBusy(_ id: ID, _ busy: Bool) {
        guard let index = held.firstIndex(where: { $0.id == id }) else { return }
        held[index].busy = busy
    }

    /// Frees `id`'s slot (nothing when it no longer holds one).
    mutating func release(_ id: ID) {
        held.removeAll { $0.id == id }
    }
}

extension ConnectionSlots: Sendable where ID: Sendable {}

/// `struct ucred` (SO_PEERCRED), which Glibc's module does not export.
struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: uid_t = 0
    var gid: gid_t = 0
}
