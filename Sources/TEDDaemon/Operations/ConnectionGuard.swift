import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Admission for local servers (control socket, metrics): at most `maxConnections` at
/// once, each closed `lifetime` after it was accepted whatever it does (an idle or slow
/// client cannot hold a descriptor), and on a UNIX socket only peers whose credentials
/// (`SO_PEERCRED`) are root, ted's own user, or in `groupID`.
final class ConnectionGuard: Sendable {
    let maxConnections: Int
    let lifetime: TimeAmount
    let groupID: gid_t?
    let checkCredentials: Bool
    private let open = NIOLockedValueBox(0)
    private let refusedCount = NIOLockedValueBox(0)

    init(maxConnections: Int, lifetime: TimeAmount, checkCredentials: Bool, groupID: gid_t? = nil) {
        self.maxConnections = maxConnections
        self.lifetime = lifetime
        self.checkCredentials = checkCredentials
        self.groupID = groupID
    }

    /// Connections refused so far (over the cap or with the wrong credentials).
    var refused: Int { refusedCount.withLockedValue { $0 } }
    /// Connections open now.
    var current: Int { open.withLockedValue { $0 } }

    /// Succeeds for an admitted connection (and arms its deadline); fails, so NIO closes
    /// the connection, otherwise.
    func admit(_ channel: any Channel) -> EventLoopFuture<Void> {
        let admitted = open.withLockedValue { count -> Bool in
            guard count < maxConnections else { return false }
            count += 1
            return true
        }
        guard admitted else { return refuse(channel, "too many connections") }
        channel.closeFuture.whenComplete { _ in self.open.withLockedValue { $0 -= 1 } }
        let deadline = channel.eventLoop.scheduleTask(in: lifetime) { channel.close(promise: nil) }
        channel.closeFuture.whenComplete { _ in deadline.cancel() }
        guard checkCredentials else { return channel.eventLoop.makeSucceededVoidFuture() }
        guard let provider = channel as? any SocketOptionProvider else { return refuse(channel, "no credentials") }
        return provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
            .flatMap { (credentials: PeerCredentials) in
            self.allows(uid: credentials.uid, gid: credentials.gid)
                ? channel.eventLoop.makeSucceededVoidFuture() : self.refuse(channel, "peer not allowed")
        }
    }

    /// Root, ted's own user, or the configured group.
    func allows(uid: uid_t, gid: gid_t) -> Bool {
        uid == 0 || uid == geteuid() || (groupID.map { $0 == gid } ?? false)
    }

    private func refuse(_ channel: any Channel, _ why: String) -> EventLoopFuture<Void> {
        refusedCount.withLockedValue { $0 += 1 }
        return channel.eventLoop.makeFailedFuture(ControlSocketError(why))
    }
}

/// `struct ucred` (SO_PEERCRED), which Glibc's module does not export.
struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: uid_t = 0
    var gid: gid_t = 0
}
