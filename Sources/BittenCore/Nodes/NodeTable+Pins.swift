/// Pins: each node is pinned to its account, server and machine; a message that does not fit is refused or
/// waits for an operator (an account switch), a restart of the pinned EA is taken at once.
extension NodeTable {
    /// Whether a message is taken for its node.
    public enum Verdict: Sendable, Equatable {
        case accepted
        /// Refused (not applied, not routed), with the reason.
        case refused(String)
    }

    /// The account login in a `node_id` (`NODE_{login}_{tickcount}`), if it has that shape.
    public static func login(ofNodeID nodeID: String) -> Int? {
        // Every heartbeat asks: the parts of `split(separator: "_")` (empty ones dropped) read in place,
        // without a substring per part. The first part must be NODE, a third must exist, the second is the login.
        var nodeID = nodeID
        return nodeID.withUTF8 { bytes -> Int? in
            let underscore = UInt8(ascii: "_")
            var index = 0
            func part() -> Range<Int>? {
                while index < bytes.count, bytes[index] == underscore { index += 1 }
                guard index < bytes.count else { return nil }
                let start = index
                while index < bytes.count, bytes[index] != underscore { index += 1 }
                return start..<index
            }
            guard let first = part(), first.count == 4, bytes[first.lowerBound] == UInt8(ascii: "N"),
                bytes[first.lowerBound + 1] == UInt8(ascii: "O"), bytes[first.lowerBound + 2] == UInt8(ascii: "D"),
                bytes[first.lowerBound + 3] == UInt8(ascii: "E"),
                let login = part(), part() != nil
            else { return nil }
            return Int(String(decoding: UnsafeBufferPointer(rebasing: bytes[login]), as: UTF8.self))
        }
    }

    /// Checks a message against its node's pin before it is applied or routed. A message with another
    /// account or server than the pin puts the node in `pending_switch` (no fires until an operator
    /// approves, or the quiet period passes); a second machine claiming a UUID whose pinned EA is alive
    /// is refused as a duplicate; the EA's own restart (same account and server, same machine, or the old
    /// one silent) is taken at once. Returns the verdict and the events to record.
    public mutating func admit(_ message: EAMessage, peer: String?, at now: Double) -> (Verdict, [NodeEvent]) {
        let uuid = message.userUUID
        // Read in place: a heartbeat passes here, and copying the record out costs a retain per field.
        guard let index = nodes.index(forKey: uuid), let pin = peek(index, { $0.pin }) else { return (.accepted, []) }
        var account: Int?
        var server: String?
        var nodeID: String?
        switch message {
        case .hello(let m): (account, server, nodeID) = (m.accountLogin, m.broker, m.nodeID)
        case .handshake(let m): (account, server, nodeID) = (m.accountNumber, m.server, m.nodeID)
        case .telemetryHeartbeat(let m): (account, nodeID) = (m.accountNumber, m.nodeID)
        case .heartbeat(let m): nodeID = m.nodeID
        case .disconnect(let m):
            // Only the running EA may say it stops (anyone may claim a UUID).
            guard m.nodeID == peek(index, { $0.nodeID }) else {
                return refuse(uuid, peer: peer, account: 0, "DISCONNECT from another node id", at: now)
            }
            return (.accepted, [])
        default: return (.accepted, [])
        }
        let claimed = account ?? nodeID.flatMap(Self.login(ofNodeID:))
        if let claimed, claimed != 0, claimed != pin.account {
            return pending(uuid, pin: pin, account: claimed, server: server ?? pin.server, peer: peer, at: now)
        }
        if let server, !server.isEmpty, !pin.server.isEmpty, server != pin.server {
            return pending(uuid, pin: pin, account: claimed ?? pin.account, server: server, peer: peer, at: now)
        }
        if let peer, !peerMatch.matches(peer, pin.peer) {
            // The same account from another machine: a move once the pinned EA is silent, a duplicate while it lives.
            guard now - peek(index, { $0.lastSeen }) > silentAfter else {
                let (verdict, events) = refuse(
                    uuid, peer: peer, account: claimed ?? 0,
                    "another machine (\(peer)) while the pinned EA (\(pin.peer)) is alive", at: now)
                let duplicate = NodeEvent.duplicateEA(
                    uuid: uuid, pinnedPeer: pin.peer, peer: peer, account: claimed ?? 0, at: now)
                return (verdict, events + [duplicate])
            }
            peek(index) { $0.pin?.peer = peer }
        }
        if claimed == pin.account { peek(index) { $0.pinnedSeenAt = now } }
        return (.accepted, [])
    }

    mutating func refuse(_ uuid: String, peer: String?, account: Int, _ reason: String, at now: Double) -> (
        Verdict, [NodeEvent]
    ) {
        update(uuid) { $0.lastRefused = RefusedAttempt(peer: peer ?? "", account: account, reason: reason, at: now) }
        return (.refused(reason), [])
    }

    mutating func pending(
        _ uuid: String, pin: NodePin, account: Int, server: String, peer: String?, at now: Double
    )
        -> (Verdict, [NodeEvent])
    {
        let reason = "account \(account) on \(server) is not the pinned \(pin.account) on \(pin.server)"
        let (verdict, _) = refuse(uuid, peer: peer, account: account, reason, at: now)
        var events: [NodeEvent] = []
        let known = nodes[uuid]?.pendingSwitch
        // A heartbeat carries no server: the same account again is the same pending switch.
        if known?.account != account || (server != pin.server && known?.server != server) {
            update(uuid) {
                $0.pendingSwitch = PendingSwitch(
                    account: account, server: server, peer: peer ?? known?.peer ?? "", at: now)
            }
            events.append(
                .switchPending(
                    uuid: uuid, pinnedAccount: pin.account, account: account, server: server, peer: peer ?? "", at: now)
            )
        } else if let peer, !peer.isEmpty, known?.peer.isEmpty == true {
            update(uuid) { $0.pendingSwitch?.peer = peer }
        }
        return (verdict, events)
    }

    /// An operator approves the pending switch: the pin moves to the new account, server and machine.
    public mutating func approveSwitch(_ uuid: String, at now: Double) -> [NodeEvent] {
        guard let node = nodes[uuid], let switching = node.pendingSwitch else { return [] }
        let old = node.account
        update(uuid) { n in
            n.pin = NodePin(account: switching.account, server: switching.server, peer: switching.peer, since: now)
            n.pendingSwitch = nil
            n.account = switching.account
            n.server = switching.server
            n.accountSwitches += 1
            n.pinnedSeenAt = now
        }
        return [.accountSwitch(uuid: uuid, oldAccount: old, newAccount: switching.account, at: now)]
    }

    /// An operator dismisses the pending switch (an intruder): the pin stays.
    public mutating func dismissSwitch(_ uuid: String) -> Bool {
        guard nodes[uuid]?.pendingSwitch != nil else { return false }
        update(uuid) { $0.pendingSwitch = nil }
        return true
    }

    /// Clears a node's pin (and a pending switch): the next HELLO pins again.
    public mutating func unpin(_ uuid: String) -> Bool {
        guard nodes[uuid] != nil else { return false }
        update(uuid) { n in
            n.pin = nil
            n.pendingSwitch = nil
        }
        return true
    }

    /// Approves the switches pending for longer than `after` seconds in which the pinned account never
    /// came back (the operator's automatic approval; off when `after` is 0).
    public mutating func approveQuietSwitches(at now: Double, after: Double) -> [NodeEvent] {
        guard after > 0 else { return [] }
        let due = nodes.values.filter { node in
            guard let switching = node.pendingSwitch else { return false }
            return now - switching.at >= after && node.pinnedSeenAt < switching.at
        }.map(\.uuid)
        return due.sorted().flatMap { approveSwitch($0, at: now) }
    }

    /// Whether a confirmation belongs to the node: its account and node id are the pinned EA's, and it
    /// came from the pinned machine. Nil when it does, else why not.
    public func untrusted(uuid: String, account: Int, nodeID: String, peer: String?) -> String? {
        guard let node = nodes[uuid], let pin = node.pin else { return nil }
        if account != pin.account { return "account \(account) is not the pinned \(pin.account)" }
        if nodeID != node.nodeID { return "node id \(nodeID) is not the running EA's \(node.nodeID)" }
        if let peer, !peerMatch.matches(peer, pin.peer) { return "sent from \(peer), the pinned EA is at \(pin.peer)" }
        return nil
    }
}
