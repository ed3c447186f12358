import Foundation

/// Source networks allowed to connect to the EA sockets (`BITTEN_EA_NETWORKS`): IPv4 CIDRs such as
/// `10.0.0.0/8`, `203.0.113.7` (a single address, /32), and IPv6 addresses (matched exactly, or by a
/// `/n` prefix of whole hextets).
public struct NetworkAllowList: Sendable, Equatable {
    /// One allowed network.
    public struct Network: Sendable, Equatable, Hashable, CustomStringConvertible {
        let v4: (address: UInt32, prefix: Int)?
        let v6: (groups: [UInt16], prefix: Int)?

        /// Parses `A.B.C.D[/n]` or an IPv6 address `[/n]`; nil when it is neither.
        public init?(_ text: String) {
            let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
            guard let host = parts.first, !host.isEmpty else { return nil }
            if let address = Self.ipv4(host) {
                let prefix = parts.count == 2 ? Int(parts[1]) : 32
                guard let prefix, (0...32).contains(prefix) else { return nil }
                v4 = (address, prefix)
                v6 = nil
            } else if let groups = Self.ipv6(host) {
                let prefix = parts.count == 2 ? Int(parts[1]) : 128
                guard let prefix, (0...128).contains(prefix), prefix % 16 == 0 else { return nil }
                v6 = (groups, prefix)
                v4 = nil
            } else {
                return nil
            }
        }

        /// Whether `address` (as libzmq reports a peer: dotted IPv4 or IPv6 text) is in the network.
        public func contains(_ address: String) -> Bool {
            if let v4, let ip = Self.ipv4(address) ?? Self.mappedIPv4(address) {
                let mask: UInt32 = v4.prefix == 0 ? 0 : ~UInt32(0) << UInt32(32 - v4.prefix)
                return ip & mask == v4.address & mask
            }
            if let v6, let groups = Self.ipv6(address) {
                let whole = v6.prefix / 16
                return Array(groups.prefix(whole)) == Array(v6.groups.prefix(whole))
            }
            return false
        }

        /// A one-line description.
        public var description: String {
            if let v4 {
                let a = v4.address
                return "\(a >> 24).\((a >> 16) & 255).\((a >> 8) & 255).\(a & 255)/\(v4.prefix)"
            }
            if let v6 { return v6.groups.map { String($0, radix: 16) }.joined(separator: ":") + "/\(v6.prefix)" }
            return "?"
        }

        /// The same network.
        public static func == (a: Network, b: Network) -> Bool { a.description == b.description }
        /// Hashes the network's text.
        public func hash(into hasher: inout Hasher) { hasher.combine(description) }

        static func ipv4(_ text: String) -> UInt32? {
            let octets = text.split(separator: ".", omittingEmptySubsequences: false)
            guard octets.count == 4 else { return nil }
            var value: UInt32 = 0
            for octet in octets {
                guard octet.count <= 3, let byte = UInt8(octet) else { return nil }
                value = value << 8 | UInt32(byte)
            }
            return value
        }

        static func mappedIPv4(_ text: String) -> UInt32? {
            let lower = text.lowercased()
            guard lower.hasPrefix("::ffff:") else { return nil }
            return ipv4(String(lower.dropFirst(7)))
        }

        static func ipv6(_ text: String) -> [UInt16]? {
            guard text.contains(":") else { return nil }
            let halves = text.components(separatedBy: "::")
            guard halves.count <= 2 else { return nil }
            func groups(_ part: String) -> [UInt16]? {
                guard !part.isEmpty else { return [] }
                var out: [UInt16] = []
                for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                    guard (1...4).contains(group.count), let value = UInt16(group, radix: 16) else { return nil }
                    out.append(value)
                }
                return out
            }
            guard let head = groups(halves[0]) else { return nil }
            if halves.count == 1 { return head.count == 8 ? head : nil }
            guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
            return head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        }
    }

    /// The allowed networks.
    public private(set) var networks: [Network]

    /// A list of these networks.
    public init(_ networks: [Network] = []) { self.networks = networks }

    /// Parses a comma- or line-separated list (blank entries and `#` comments skipped); returns the
    /// networks and the entries that are not networks.
    public static func parse(_ text: String) -> (list: NetworkAllowList, invalid: [String]) {
        var networks: [Network] = []
        var invalid: [String] = []
        for raw in text.split(whereSeparator: { $0 == "," || $0 == "\n" }) {
            let entry =
                raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map {
                    $0.trimmingCharacters(in: .whitespaces)
                } ?? ""
            guard !entry.isEmpty else { continue }
            if let network = Network(entry) { networks.append(network) } else { invalid.append(entry) }
        }
        return (NetworkAllowList(networks), invalid)
    }

    /// Whether `address` may connect.
    public func allows(_ address: String) -> Bool { networks.contains { $0.contains(address) } }
}
