/// Maps the names brokers give their symbols (`EURUSD.r`, `EURUSDm`, `EURUSD-ECN`, `#EURUSD`, `US30+`,
/// `[DJI30]`, `GOLD`) to Bitten's canonical instruments (`EURUSD`, `XAUUSD`, …). Signals, prices,
/// CITADEL, statistics and the API speak canonical names; only the commands to one EA carry its
/// broker's name.
public struct SymbolCanon: Sendable, Equatable {
    /// Canonical names Bitten knows (the instrument table's symbols and the alias targets).
    public private(set) var known: Set<String>
    /// Operator aliases, upper-case broker name (decoration removed) → canonical (`GOLD` → `XAUUSD`).
    public private(set) var aliases: [String: String]
    /// Known names, longest first (a decorated name is matched by its longest known prefix).
    private var byLength: [String]

    /// Aliases every retail broker uses; the config file adds more.
    public static let standardAliases: [String: String] = [
        "GOLD": "XAUUSD", "SILVER": "XAGUSD", "BITCOIN": "BTCUSD", "BTCUSDT": "BTCUSD", "XBTUSD": "BTCUSD",
        "DJI30": "US30", "DJ30": "US30", "WS30": "US30", "DOW30": "US30", "USA30": "US30",
        "NAS100": "USTEC", "US100": "USTEC", "NDX100": "USTEC", "SPX500": "US500", "SP500": "US500",
        "GER40": "DE40", "DAX40": "DE40", "UK100": "UK100", "FTSE100": "UK100",
    ]

    /// A canon of the `known` symbols, with `aliases` (`GOLD` → `XAUUSD`).
    public init(known: some Sequence<String>, aliases: [String: String] = SymbolCanon.standardAliases) {
        var names = Set(known.map { $0.uppercased() })
        var table: [String: String] = [:]
        for (from, to) in aliases {
            table[from.uppercased()] = to.uppercased()
            names.insert(to.uppercased())
        }
        self.known = names
        self.aliases = table
        self.byLength = names.union(table.keys).sorted { $0.count != $1.count ? $0.count > $1.count : $0 < $1 }
    }

    /// The canonical name of a broker symbol. A name that matches nothing known keeps its core
    /// (decoration removed, upper case), so an unknown instrument still has one stable name.
    public func canonical(_ brokerSymbol: String) -> String {
        let upper = brokerSymbol.uppercased()
        if let hit = resolve(upper) { return hit }
        // Split on the decoration characters: `EURUSD.r` → EURUSD, R; `[DJI30]` → DJI30; `#US30+` → US30.
        let tokens = upper.split { !($0.isLetter || $0.isNumber) }.map(String.init)
        for token in tokens { if let hit = resolve(token) { return hit } }
        // A suffix glued on (`EURUSDm`, `EURUSDPRO`, `GOLDmicro`): the longest known name it starts with.
        for token in tokens {
            for name in byLength where token.count > name.count && token.hasPrefix(name) {
                return aliases[name] ?? name
            }
        }
        return tokens.first ?? upper
    }

    private func resolve(_ name: String) -> String? {
        if let alias = aliases[name] { return alias }
        return known.contains(name) ? name : nil
    }
}

/// One EA's broker names for the canonical instruments it quotes or lists, learned from its
/// handshake's `symbol_list` and the TICKs it sends. Encoded for the node hash as
/// `CANONICAL=broker,…`.
public struct BrokerSymbolMap: Sendable, Equatable {
    /// canonical → the broker's name.
    public private(set) var names: [String: String] = [:]

    /// No names known yet.
    public init() {}

    /// Reads the node hash encoding; entries that are not valid symbols are skipped.
    public init(encoded: String) {
        for entry in encoded.split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, Symbol.isValid(parts[0]), Symbol.isValid(parts[1]) else { continue }
            names[parts[0]] = parts[1]
        }
    }

    /// Whether nothing has been learned yet (an EA that sent no handshake or tick since Bitten started).
    public var isEmpty: Bool { names.isEmpty }

    /// The broker's name of `canonical`, if this EA's broker lists it.
    public subscript(_ canonical: String) -> String? { names[canonical] }

    /// Learns one broker name; returns whether the map changed. A name that is the canonical itself
    /// does not displace a decorated one learned earlier only when both are listed (the last TICK wins).
    @discardableResult
    public mutating func learn(broker: String, canonical: String) -> Bool {
        guard Symbol.isValid(broker), names[canonical] != broker else { return false }
        names[canonical] = broker
        return true
    }

    /// The node hash encoding, sorted by canonical name.
    public var encoded: String {
        names.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}
