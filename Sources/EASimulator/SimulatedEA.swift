/// One simulated EA's account and positions.
public struct SimulatedEA: Sendable {
    struct Position: Sendable {
        /// Canonical symbol (the market walk's name).
        var symbol: String
        var buy: Bool
        var lot: Double
        var openPrice: Double
        /// Stop loss and take profit as the broker holds them (0 = none).
        var sl: Double
        var tp: Double
    }

    /// The user's UUID (the EA's `target_uuid`).
    public let uuid: String
    /// The MetaTrader account number.
    public internal(set) var account: Int
    /// The EA's node id.
    public internal(set) var nodeID: String
    /// Canonical symbols traded (the first is the chart symbol).
    var symbols: [String]
    /// Canonical Market Watch symbols (ticked).
    var marketWatch: [String]
    var currency: String
    /// The account balance.
    public internal(set) var balance: Double = 10_000
    var equity: Double = 10_000
    var margin: Double = 0
    var ticks: Int = 0
    var positions: [Int: Position] = [:]
    /// Commands received and not yet read (the EA reads one per chart tick).
    var inbox: [[UInt8]] = []
    /// A silenced EA stays connected but sends nothing (a frozen terminal).
    public internal(set) var silenced = false
    /// A quiet chart symbol: the EA keeps sending its timer messages but reads no command.
    public internal(set) var quiet = false
    /// True once stopped (a muted, disconnected or restarting EA).
    public internal(set) var stopped = false
    /// Positions the simulated broker closed at their stop loss or take profit (never reported).
    public internal(set) var brokerCloses: [(ticket: Int, reason: String, price: Double, profit: Double)] = []

    var marginLevel: Double { margin > 0 ? equity / margin * 100 : 0 }

    /// The identity frame the real EA presents: its UUID without the last character.
    public var identity: [UInt8] { Array(uuid.utf8.dropLast()) }

    /// Commands waiting to be read.
    public var unreadCommands: Int { inbox.count }

    /// Open positions' tickets.
    public var openTickets: [Int] { positions.keys.sorted() }
}

/// The EA v2.05's command reader, byte for byte: the first `"key":` (no space before the colon),
/// spaces and tabs skipped; a string runs to the next `"` (no escapes), anything else to the next
/// `,` `}` or `]`. Missing → "".
enum EAReader {
    static func value(_ json: [UInt8], _ key: String) -> String {
        let pattern = Array("\"\(key)\":".utf8)
        guard json.count >= pattern.count, let start = find(pattern, in: json) else { return "" }
        var i = start + pattern.count
        while i < json.count, json[i] == 0x20 || json[i] == 0x09 { i += 1 }
        guard i < json.count else { return "" }
        var end = i
        if json[i] == UInt8(ascii: "\"") {
            i += 1
            end = i
            while end < json.count, json[end] != UInt8(ascii: "\"") { end += 1 }
        } else {
            while end < json.count, json[end] != UInt8(ascii: ","), json[end] != UInt8(ascii: "}"),
                json[end] != UInt8(ascii: "]")
            {
                end += 1
            }
        }
        return end > i ? String(decoding: json[i..<end], as: UTF8.self) : ""
    }

    /// MQL5's StringToDouble: the leading number of the text, 0 when there is none.
    static func double(_ text: String) -> Double {
        var prefix = ""
        for character in text.drop(while: { $0 == " " }) {
            guard
                character.isNumber || character == "." || character == "-" || character == "+" || character == "e"
                    || character == "E"
            else { break }
            prefix.append(character)
        }
        while !prefix.isEmpty, Double(prefix) == nil { prefix.removeLast() }
        return Double(prefix) ?? 0
    }

    private static func find(_ pattern: [UInt8], in bytes: [UInt8]) -> Int? {
        guard let first = pattern.first else { return nil }
        var i = 0
        while i + pattern.count <= bytes.count {
            if bytes[i] == first, bytes[i..<(i + pattern.count)].elementsEqual(pattern) { return i }
            i += 1
        }
        return nil
    }
}
