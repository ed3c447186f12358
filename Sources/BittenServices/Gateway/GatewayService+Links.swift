import BittenCore
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// The command socket's TCP links (see `EALinks`): which connection carries which EA, and the drops that
/// free a routing id held by a dead or refused connection.
extension GatewayService {
    func noteLink(_ fd: Int32, uuid: String?, peer: String?, at: Double) {
        links.withLock { table in
            // A link whose accept was not seen (rare): learn its far end now, so that a drop can check it.
            if table.links[fd] == nil, let remote = TCPLink.remoteEndpoint(fd) {
                table.opened(fd, host: remote.host, port: remote.port, at: at)
            }
            table.delivered(fd, uuid: uuid, peerAddress: peer, at: at)
        }
    }

    /// Shuts the link down (its DEALER reconnects by itself) if it still is the connection we know.
    @discardableResult
    func dropLink(_ fd: Int32) -> Bool {
        guard
            let link = links.withLock({ table -> EALinks.Link? in
                defer { table.forget(fd) }
                return table.links[fd]
            })
        else { return false }
        return drop(fd, link)
    }

    func drop(_ fd: Int32, _ link: EALinks.Link) -> Bool {
        guard let port = link.port else { return false }
        return TCPLink.drop(fd, remote: (link.host, port), localPort: localPort)
    }

    func monitorLoop(_ monitor: LoopSocket) async {
        await withGracefulShutdownHandler {
            for await batch in monitor.messages.cancelOnGracefulShutdown() {
                for message in batch {
                    guard let event = MonitorEvent(message) else { continue }
                    linkEvent(event, at: now())
                }
            }
        } onGracefulShutdown: {
        }
    }

    func linkEvent(_ event: MonitorEvent, at: Double) {
        let fd = Int32(bitPattern: event.value)
        switch event.kind {
        case .accepted:
            guard let remote = TCPLink.remoteEndpoint(fd) else { return }
            links.withLock { $0.opened(fd, host: remote.host, port: remote.port, at: at) }
        case .disconnected:
            let waiting = links.withLock { $0.closed(fd) }
            for (fd, link) in waiting where drop(fd, link) {
                droppedRestart.increment()
                logger.info(
                    "EA connection closed: a silent connection from the same host (the EA restarted while its old connection still held the routing id) was dropped so that it reconnects and takes the route",
                    metadata: ["bitten.node.peer": "\(link.host):\(link.port ?? 0)"])
            }
        default: break
        }
    }

    func sweepLoop() async {
        let every = Duration.milliseconds(Int64(max(0.1, linkTimeout / 4) * 1000))
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: every) } } catch { return }
            // Stale first: dropping a restarted EA's old connection releases its new one as a restart,
            // not as a duplicate.
            sweepStaleLinks(at: now())
            sweepSilentLinks(at: now())
        }
    }

    /// Drops a node's link that has been silent longer than the link timeout while the node is heard on
    /// its other channels within it: that path is stuck, or it is the old connection of a restarted EA,
    /// and it holds the routing id that the EA's live connection needs. (This is what ZMTP heartbeats did;
    /// their timers cost libzmq 4.3 a linear scan of every connection per answered PING.)
    func sweepStaleLinks(at: Double) {
        let candidates = links.withLock { $0.stale(longerThan: linkTimeout, at: at) }
        for (fd, link) in candidates {
            guard let uuid = link.uuid, let node = registry.node(uuid), node.online, at - node.lastSeen <= linkTimeout
            else { continue }
            // Taken out as if closed: the silent connections of its host (a restarted EA held off by it) are
            // released at once, as when the monitor reports a close.
            let released = links.withLock { table -> [(fd: Int32, link: EALinks.Link)]? in
                guard let current = table.links[fd], current.lastMessageAt == link.lastMessageAt else { return nil }
                return table.closed(fd)
            }
            guard let released, drop(fd, link) else { continue }
            droppedStale.increment()
            logger.warning(
                "EA connection dropped: silent past the link timeout while its EA is heard on its other channels",
                metadata: [
                    "bitten.node.uuid": "\(uuid)", "bitten.node.peer": "\(link.host):\(link.port ?? 0)",
                    "bitten.node.silent_seconds": "\(Int(at - (link.lastMessageAt ?? at)))",
                ])
            for (fd, link) in released where drop(fd, link) { droppedRestart.increment() }
        }
    }

    /// Drops links that have sent nothing since they opened, longer than the link timeout: libzmq gave
    /// them no route because another live connection holds their routing id, and drops all they send.
    func sweepSilentLinks(at: Double) {
        let silent = links.withLock { $0.silent(longerThan: linkTimeout, at: at) }
        for (fd, link) in silent {
            _ = drop(fd, link)
            droppedSilent.increment()
            let candidates = links.withLock { $0.uuids(from: link.host) }
            let alert: Bool = silentAlerted.withLock { last in
                if let previous = last[link.host], at - previous < 600 { return false }
                last[link.host] = at
                return true
            }
            let peer = "\(link.host):\(link.port ?? 0)"
            let which =
                candidates.isEmpty
                ? "an EA with the UUID of a connected node, from a host no connected node uses"
                : "a second EA on the host of \(candidates.joined(separator: ", "))"
            logger.warning(
                "EA connection dropped: silent since it connected, its routing id is held by another live connection",
                metadata: [
                    "bitten.node.peer": "\(peer)", "bitten.node.silent_seconds": "\(Int(at - link.openedAt))",
                    "bitten.node.same_host": "\(candidates)",
                ])
            if alert {
                alerts?.raise(
                    kind: "duplicate_ea", uuid: candidates.count == 1 ? candidates[0] : nil, broker: nil,
                    reason:
                        "a connection from \(link.host) sent nothing for \(Int(linkTimeout)) s: another live connection holds its routing id (\(which)), so libzmq gives it no route and drops what it sends; it was closed and is refused again each time it reconnects while the first one lives",
                    at: at)
            }
        }
    }

    /// Pings measure latency without ever delaying a fire: the EA reads one command per tick of its
    /// chart symbol, so a ping waits for the previous pong and for every other command's answer, and
    /// none goes to an offline node or while the market is closed. A ping unanswered past the fire
    /// timeout marks the node `commands_unread` and raises one alert.
    func pingLoop() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.pingInterval) } } catch {
                return
            }
            await pingRound()
        }
    }

    /// One round of the ping loop.
    func pingRound() async {
        let at = now()
        let time = MetaTraderTime(epochSeconds: Int(at))
        let closed = quietWhenMarketClosed && AlertPolicy.marketClosed(at: at)
        for (uuid, decision) in registry.pingDecisions(connectedUUIDs, fireTimeout: fireTimeout, marketClosed: closed) {
            switch decision {
            case .wait: continue
            case .unread:
                logger.warning(
                    "EA reads no command: a ping is unanswered",
                    metadata: [
                        "bitten.node.uuid": "\(uuid)", "bitten.waited_seconds": "\(Int(fireTimeout))",
                    ])
                alerts?.raise(
                    kind: "commands_unread", uuid: uuid, broker: registry.node(uuid)?.broker,
                    reason:
                        "no answer to a ping for \(Int(fireTimeout)) s: the EA's chart symbol is quiet or the EA is stuck, so commands to it wait",
                    at: at)
            case .send:
                let id = "P-\(pingCounter.add(1, ordering: .relaxed).newValue)"
                registry.pingSent(uuid: uuid, pingID: id)
                do {
                    try await send(.ping(targetUUID: uuid, pingID: id, timestamp: time))
                } catch {
                    logger.debug(
                        "ping not sent", metadata: ["bitten.node.uuid": "\(uuid)", "bitten.error": "\(error)"])
                }
            }
        }
    }
}
