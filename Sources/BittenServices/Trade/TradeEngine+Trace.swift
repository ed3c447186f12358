import BittenCore
import Foundation

/// The trade engine's steps in the flight recorder: each EA answer as the shard took it (the fire's new state with
/// what the EA said), the position it opened, each close request, and the close with where its price came from.
extension TradeEngine {
    /// The fires of the close requests among `changes` (their positions are open still), read under the lane's lock.
    static func closeFires(_ changes: [TradeChange], in shard: TradeShard) -> [Int: String] {
        var fires: [Int: String] = [:]
        for case .closeRequest(let request, _) in changes where request.state != .sent {
            if let fire = shard.book.positions.positions[request.ticket]?.fireID { fires[request.ticket] = fire }
        }
        return fires
    }

    /// The steps of `changes` (made at the recorder's flush, not in the commit loop).
    static func traceSteps(_ changes: [TradeChange], closeFires: [Int: String], at: Double) -> [FlightRecorder.Step] {
        var steps: [FlightRecorder.Step] = []
        func fire(_ id: String, _ step: String, _ fields: [String: String]) {
            steps.append(FlightRecorder.Step(signalID: nil, fireID: id, step: step, at: at, fields: fields))
        }
        for change in changes {
            switch change {
            case .fireMoved(let id, let state, let fields) where state != .sent:
                fire(id, state.rawValue, pairs(fields))
            case .positionOpened(let p, _, let brokerSymbol, let dropped):
                var fields = [
                    "ticket": String(p.ticket), "account": String(p.account),
                    "open_price": TradeShard.number(p.openPrice),
                    "lot": TradeShard.number(p.lot), "sl": TradeShard.number(p.stopLoss),
                    "tp": TradeShard.number(p.takeProfit), "broker_symbol": brokerSymbol,
                ]
                if let dropped {
                    fields["sl_dropped"] = dropped.stopLoss ? "1" : "0"
                    fields["tp_dropped"] = dropped.takeProfit ? "1" : "0"
                }
                fire(p.fireID, "position_opened", fields)
            case .positionClosed(let trade):
                fire(trade.position.fireID, "closed", TradeShard.tradeFields(trade))
            case .closeRequest(let request, let fields) where request.state != .sent:
                // (Sent: the fire desk records it with the command.) Open still (a request, or its answer before
                // the close): the position names its fire.
                guard let fireID = closeFires[request.ticket] else { continue }
                var data = pairs(fields)
                data["ticket"] = String(request.ticket)
                data["command"] = request.command
                fire(fireID, "close_" + request.state.rawValue, data)
            default:
                continue
            }
        }
        return steps
    }

    static func pairs(_ fields: [String]) -> [String: String] {
        var map: [String: String] = [:]
        for i in stride(from: 0, to: fields.count - 1, by: 2) { map[fields[i]] = fields[i + 1] }
        return map
    }
}
