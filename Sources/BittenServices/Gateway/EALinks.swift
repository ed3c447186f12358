/// The TCP connections ("links") of the command channel (ROUTER 5555), as the gateway tracks them to
/// keep every route with the pinned EA.
///
/// The socket runs without `ROUTER_HANDOVER`: while a connection holds a routing id, libzmq gives a
/// second connection with the same id no route and silently drops whatever it sends (see
/// `DuplicateIdentityTests`). That protects the pinned EA from an intruder who knows its UUID, but such
/// a connection also stays dead after the first one goes, until it reconnects. So a link is watched from
/// its accept (socket monitor) to its first message (`ZMQ_SRCFD` on each message):
/// - a link silent for longer than the EA's own heartbeat (the link timeout) is one libzmq refused: it
///   is dropped (its DEALER reconnects by itself), counted and alerted;
/// - when a node's link closes (the EA stopped, keepalive or the stale sweep found it dead), silent links from the
///   same host are dropped at once: that is the EA restarted while its old connection still held the
///   id, and on reconnecting it gets it.
///
/// Pure state; the gateway feeds it events with their time and carries out the drops.
struct EALinks: Sendable {
    struct Link: Sendable, Equatable {
        /// The remote IP (from `getpeername` at accept, or the message's peer address when the accept
        /// was not seen).
        var host: String
        /// The remote port, when the accept was seen (a drop checks it).
        var port: Int?
        var openedAt: Double
        /// The UUID of the last message that came in on it.
        var uuid: String?
        var lastMessageAt: Double?
    }

    /// Live links by descriptor.
    private(set) var links: [Int32: Link] = [:]

    /// A connection was accepted (a new link on that descriptor, whatever was there before).
    mutating func opened(_ fd: Int32, host: String, port: Int, at now: Double) {
        links[fd] = Link(host: host, port: port, openedAt: now)
    }

    /// A message came in on `fd` (for `uuid`, when it could be read).
    mutating func delivered(_ fd: Int32, uuid: String?, peerAddress: String?, at now: Double) {
        if links[fd] == nil { links[fd] = Link(host: peerAddress ?? "", openedAt: now) }
        links[fd]?.lastMessageAt = now
        if let uuid { links[fd]?.uuid = uuid }
    }

    /// The link on `fd` closed. Returns the silent links to drop now: those from the same host when the
    /// closed link carried a node's messages (that node's EA, restarted while this link held its id).
    mutating func closed(_ fd: Int32) -> [(fd: Int32, link: Link)] {
        guard let link = links.removeValue(forKey: fd) else { return [] }
        guard link.uuid != nil else { return [] }
        let host = link.host
        return links.filter { $0.value.lastMessageAt == nil && $0.value.host == host }
            .map { (fd: $0.key, link: $0.value) }.sorted { $0.fd < $1.fd }
    }

    /// Forgets a link the gateway dropped (its close event may never come when the drop failed).
    mutating func forget(_ fd: Int32) { links[fd] = nil }

    /// Links that have sent nothing for longer than `timeout` since they opened: libzmq refused their
    /// routing id. They are taken out of the table (the gateway drops them).
    mutating func silent(longerThan timeout: Double, at now: Double) -> [(fd: Int32, link: Link)] {
        let found = links.filter { $0.value.lastMessageAt == nil && now - $0.value.openedAt > timeout }
            .map { (fd: $0.key, link: $0.value) }.sorted { $0.fd < $1.fd }
        for (fd, _) in found { links[fd] = nil }
        return found
    }

    /// Links that carried a node's messages and have been silent longer than `timeout`, whose node
    /// `isAlive` says is still heard on its other channels (5556 heartbeats, 5558 pongs): the path of this
    /// link is stuck (a relay or middlebox that ACKs but forwards nothing), or it is the old connection of an
    /// EA that restarted. A weekend, when the EA is silent on every channel, is not this. Only candidates:
    /// the caller checks `isAlive` outside its lock and calls `forget` for the ones it drops.
    func stale(longerThan timeout: Double, at now: Double) -> [(fd: Int32, link: Link)] {
        links.filter { entry in
            guard entry.value.uuid != nil, let last = entry.value.lastMessageAt else { return false }
            return now - last > timeout
        }.map { (fd: $0.key, link: $0.value) }.sorted { $0.fd < $1.fd }
    }

    /// The nodes whose messages come in on links from `host`.
    func uuids(from host: String) -> [String] {
        Array(Set(links.values.filter { $0.host == host }.compactMap(\.uuid))).sorted()
    }

    /// The link carrying `uuid`'s messages, if one is known.
    func link(of uuid: String) -> (fd: Int32, link: Link)? {
        links.filter { $0.value.uuid == uuid }.max { ($0.value.lastMessageAt ?? 0) < ($1.value.lastMessageAt ?? 0) }
            .map { (fd: $0.key, link: $0.value) }
    }
}
