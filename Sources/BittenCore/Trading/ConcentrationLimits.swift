import Foundation

/// The service's concentration limits: the most lots open or in flight across every user on one symbol, and on
/// one signal (nil: no limit).
public struct ConcentrationLimits: Sendable, Equatable {
    /// Per symbol (canonical names).
    public var perSymbol: [String: Double]
    /// Every symbol not named.
    public var anySymbol: Double?
    /// Per signal.
    public var perSignal: Double?

    /// Limits.
    public init(perSymbol: [String: Double] = [:], anySymbol: Double? = nil, perSignal: Double? = nil) {
        self.perSymbol = perSymbol
        self.anySymbol = anySymbol
        self.perSignal = perSignal
    }

    /// Whether any limit is set.
    public var isEmpty: Bool { perSymbol.isEmpty && anySymbol == nil && perSignal == nil }

    /// The limit of a symbol.
    public func limit(symbol: String) -> Double? { perSymbol[symbol] ?? anySymbol }

    /// Parses `100` (every symbol) or `EURUSD=200,XAUUSD=50,*=100`; nil when it is not that.
    public static func parseSymbols(_ text: String) -> (perSymbol: [String: Double], any: Double?)? {
        let trimmed = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !trimmed.isEmpty else { return nil }
        if trimmed.count == 1, let value = Double(trimmed[0]), value.isFinite, value > 0 { return ([:], value) }
        var perSymbol: [String: Double] = [:]
        var any: Double?
        for item in trimmed {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let value = Double(parts[1]), value.isFinite, value > 0 else { return nil }
            if parts[0] == "*" {
                any = value
            } else {
                guard Symbol.isValid(parts[0]) else { return nil }
                perSymbol[parts[0].uppercased()] = value
            }
        }
        return (perSymbol, any)
    }
}

/// A shard's lots open or in flight, per symbol and per signal (what it contributes to the concentration totals).
extension TradeShard {
    /// Lots of open positions and of fires in flight that hold a slot, per symbol and per signal.
    public var heldLots: (bySymbol: [String: Double], bySignal: [String: Double]) {
        var bySymbol: [String: Double] = [:]
        var bySignal: [String: Double] = [:]
        for position in book.positions.positions.values {
            bySymbol[position.symbol, default: 0] += position.lot
            if let signal = book.fires[position.fireID]?.signalID { bySignal[signal, default: 0] += position.lot }
        }
        for fire in book.fires.values where fire.state == .pending || fire.state == .sent {
            bySymbol[fire.symbol, default: 0] += fire.lot
            bySignal[fire.signalID, default: 0] += fire.lot
        }
        return (bySymbol, bySignal)
    }
}
