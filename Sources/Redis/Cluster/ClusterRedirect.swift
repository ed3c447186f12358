/// A cluster node's address as Redis writes it in MOVED/ASK errors and topology replies.
public struct ClusterEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// Host name or address.
    public var host: String
    /// TCP port.
    public var port: Int

    /// An endpoint.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` (IPv6 hosts as Redis writes them, `::1:6379`, or bracketed).
    public init?(_ text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65_535).contains(port)
        else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host
        self.port = port
    }

    /// `host:port` (`[v6]:port` for IPv6).
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// What a cluster error reply asks the client to do.
public enum ClusterRedirect: Sendable, Equatable {
    /// The slot lives on another primary for good: send there and refresh the slot map.
    case moved(slot: Int, to: ClusterEndpoint)
    /// The slot is being migrated and this key is already on the target: send there once, after ASKING.
    case ask(slot: Int, to: ClusterEndpoint)
    /// A multi-key command met a slot in migration with its keys split: retry after a pause.
    case tryAgain
    /// The cluster cannot serve the slot now (fail-over under way): retry after a pause.
    case clusterDown

    /// Reads an error reply's text; nil for errors that are not about the cluster.
    public init?(error message: String) {
        let parts = message.split(separator: " ", omittingEmptySubsequences: true)
        guard let head = parts.first else { return nil }
        switch head {
        case "MOVED", "ASK":
            guard parts.count >= 3, let slot = Int(parts[1]), (0..<ClusterSlot.count).contains(slot),
                let endpoint = ClusterEndpoint(parts[2])
            else { return nil }
            self = head == "MOVED" ? .moved(slot: slot, to: endpoint) : .ask(slot: slot, to: endpoint)
        case "TRYAGAIN": self = .tryAgain
        case "CLUSTERDOWN": self = .clusterDown
        default: return nil
        }
    }
}
