/// One simulated EA's account and positions.
public struct SimulatedEA: Sendable {
    struct Position: Sendable {
        var symbol: String
        var buy: Bool
        var lot: Double
        var openPrice: Double
    }

    public let uuid: String
    public internal(set) var account: Int
    public internal(set) var nodeID: String
    var symbols: [String]
    var balance: Double = 10_000
    var equity: Double = 10_000
    var margin: Double = 0
    var ticks: Int = 0
    var positions: [Int: Position] = [:]
    /// A silenced EA stays connected but sends nothing (a frozen terminal).
    public internal(set) var silenced = false
    public internal(set) var stopped = false

    var marginLevel: Double { margin > 0 ? equity / margin * 100 : 0 }

    /// The identity frame the real EA presents: its UUID without the last character.
    public var identity: [UInt8] { Array(uuid.utf8.dropLast()) }
}
