/// Converts money between currencies through any chain of live quotes: EURJPY directly, or via USD
/// (USDJPY and EURUSD), or any other path. A quote is a six-letter pair BASEQUOTE with a mid price.
public struct CurrencyConverter: Sendable {
    /// currency → (other currency, rate: 1 unit of the first in the other).
    private var edges: [String: [(String, Double)]] = [:]
    private var pairs: Set<String> = []

    /// Builds the graph from canonical symbols and mid prices; symbols that are not six-letter
    /// currency pairs (indices, unknown names) and prices that are not positive are left out.
    public init(mids: [(String, Double)]) {
        for (symbol, mid) in mids {
            guard let (base, quote) = Self.split(symbol), mid.isFinite, mid > 0 else { continue }
            edges[base, default: []].append((quote, mid))
            edges[quote, default: []].append((base, 1 / mid))
            pairs.insert(symbol)
        }
    }

    /// `BASE`, `QUOTE` of a six-letter pair of upper-case letters.
    public static func split(_ symbol: String) -> (String, String)? {
        guard symbol.utf8.count == 6, symbol.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else { return nil }
        return (String(symbol.prefix(3)), String(symbol.suffix(3)))
    }

    /// A conversion found: the rate and the pairs it went through.
    public struct Conversion: Sendable, Equatable {
        /// Units of the target currency for one unit of the source.
        public var rate: Double
        /// The currencies passed through, source first, target last (`JPY`, `USD`, `EUR`).
        public var path: [String]
    }

    /// The rate from `from` to `to` over the shortest chain of quotes, or nil when none exists.
    public func convert(from: String, to: String) -> Conversion? {
        if from == to { return Conversion(rate: 1, path: [from]) }
        var best: [String: (rate: Double, path: [String])] = [from: (1, [from])]
        var frontier = [from]
        while !frontier.isEmpty {
            var next: [String] = []
            for currency in frontier.sorted() {
                let here = best[currency]!
                for (other, rate) in edges[currency] ?? [] where best[other] == nil {
                    best[other] = (here.rate * rate, here.path + [other])
                    if other == to { return Conversion(rate: here.rate * rate, path: here.path + [other]) }
                    next.append(other)
                }
            }
            frontier = next
        }
        return nil
    }

    /// A pair whose quote would connect `from` to `to` (for a refusal's message): the direct pair
    /// when neither side has any quote, otherwise a pair from a currency reachable from `from` to one
    /// reachable from `to`, preferring USD.
    public func missingPairHint(from: String, to: String) -> String {
        let fromSide = reachable(from)
        let toSide = reachable(to)
        if fromSide.contains("USD") && !toSide.contains("USD") { return to + "USD or USD" + to }
        if toSide.contains("USD") && !fromSide.contains("USD") { return from + "USD or USD" + from }
        return to + from + " or " + from + to
    }

    private func reachable(_ start: String) -> Set<String> {
        var seen: Set<String> = [start]
        var stack = [start]
        while let currency = stack.popLast() {
            for (other, _) in edges[currency] ?? [] where seen.insert(other).inserted { stack.append(other) }
        }
        return seen
    }
}
