import BittenCore
import Foundation
import Redis

/// What one commit writes, as Redis commands.
extension ShardStore {
    /// The Redis commands of one commit: per-event writes in order, then what one commit writes once (each
    /// collection key's added and removed members, statistics, balances, slot counts, list pushes, the checkpoint).
    static func commands(for changes: [TradeChange], keys: ShardKeys, sequence: Int, lastApplied: String?) -> [[String]]
    {
        var commands: [[String]] = []
        var statistics: [String: TradeStatistics] = [:]
        var statisticsOrder: [String] = []
        var balances: [Int: String] = [:]
        var slots: [String: Int] = [:]
        var lists: [String: [String]] = [:]
        var listOrder: [String] = []
        var expiring: Set<String> = []
        var recentFires: [String] = []
        var dayTexts: [Int: String] = [:]
        // Each user's latest risk figures, written once per commit (a user's HSET carries them as well).
        var risks: [String: RiskDay] = [:]
        var riskOrder: [String] = []
        var events: [String] = []
        // Set, sorted-set and marker members, changed once per key and commit.
        var members = MemberChanges()
        func push(_ list: String, _ value: String) {
            if lists[list] == nil { listOrder.append(list) }
            lists[list, default: []].append(value)
        }
        for change in changes {
            switch change {
            case .user(let user, let fields):
                risks[user.uuid] = nil
                commands.append(
                    ["HSET", keys.user(user.uuid)] + fields
                        + ["uuid", user.uuid, "tier", user.tier.rawValue, "risk_override", user.riskOverride]
                        + user.trading.userFields + user.limits.userFields + user.risk.userFields)
                members.add(keys.users, .set, user.uuid)
                if user.trading.state == .active {
                    members.remove(keys.restrictedUsers, .set, user.uuid)
                } else {
                    members.add(keys.restrictedUsers, .set, user.uuid)
                }
            case .fireCreated(let fire, let expiresAt, let fields):
                // The caller's fields, then what the shard itself reloads the fire from (so those are always there).
                var core = [
                    "state", "pending", "holds_slot", "1", "fire_id", fire.id, "shard", String(keys.shard),
                    "user_uuid", fire.userUUID, "signal_id", fire.signalID, "symbol", fire.symbol,
                    "direction", fire.isBuy ? "BUY" : "SELL", "sl", n(fire.stopLoss), "tp", n(fire.takeProfit), "lot",
                    n(fire.lot),
                    "tick_size", n(fire.tickSize), "tick_value", n(fire.tickValue),
                ]
                // The entry the risk limits value a fire in flight from (reloaded with it).
                if fire.entry > 0 { core += ["entry", n(fire.entry)] }
                if let deadline = fire.deadline { core += ["deadline", n(deadline)] }
                if !fire.brokerSymbol.isEmpty { core += ["broker_symbol", fire.brokerSymbol] }
                commands.append(["HSET", keys.fire(fire.id)] + fields + core)
                members.add(
                    keys.fired, .hash, fire.signalID + "|" + fire.userUUID, fire.id + " " + TradeShard.number(expiresAt)
                )
                members.add(keys.firesInFlight, .sortedSet, fire.id, TradeShard.number(fire.deadline ?? 0))
                recentFires.append(fire.id)
            case .fireMoved(let id, let state, let fields):
                commands.append(["HSET", keys.fire(id), "state", state.rawValue] + fields)
                if state.isFinal { members.remove(keys.firesInFlight, .sortedSet, id) }
            case .fireForgotten(let id):
                members.remove(keys.firesInFlight, .sortedSet, id)
            case .markerForgotten(let signalID, let user):
                members.remove(keys.fired, .hash, signalID + "|" + user)
            case .positionOpened(let p, let signalID, let brokerSymbol, let dropped):
                var fields = [
                    "ticket", String(p.ticket), "fire_id", p.fireID, "signal_id", signalID, "user_uuid", p.userUUID,
                    "account", String(p.account), "symbol", p.symbol, "direction", p.isBuy ? "BUY" : "SELL",
                    "lot", n(p.lot), "open_price", n(p.openPrice), "sl", n(p.stopLoss), "tp", n(p.takeProfit),
                    "open_time", n(p.openTime), "tick_size", n(p.tickSize), "tick_value", n(p.tickValue), "status",
                    "open",
                ]
                if !brokerSymbol.isEmpty, brokerSymbol != p.symbol { fields += ["broker_symbol", brokerSymbol] }
                if let dropped {
                    fields += [
                        "sl_dropped", dropped.stopLoss ? "1" : "0", "tp_dropped", dropped.takeProfit ? "1" : "0",
                        "sl_requested", n(dropped.requestedStopLoss), "tp_requested", n(dropped.requestedTakeProfit),
                    ]
                }
                commands.append(["HSET", keys.position(p.ticket)] + fields)
                members.add(keys.openPositions, .set, String(p.ticket))
                members.add(keys.userPositions(p.userUUID), .set, String(p.ticket))
            case .positionClosed(let trade):
                let p = trade.position
                let v = trade.valuation
                var fields = [
                    "status", "closed", "close_price", v.closePriceText, "profit", v.profitText,
                    "closed_at", n(trade.closeTime), "close_time", n(trade.closeTime),
                    "duration", String(Int((trade.closeTime - p.openTime).rounded())), "result", v.result.rawValue,
                    "close_price_source", v.closePriceSource, "close_reason", trade.reason, "profit_source",
                    v.profitSource,
                ]
                if let byPrice = v.byPriceCents, let byBalance = v.byBalanceCents {
                    fields += [
                        "profit_by_price", CloseValuation.centsText(byPrice), "profit_by_balance",
                        CloseValuation.centsText(byBalance),
                    ]
                }
                let ticket = String(p.ticket)
                commands.append(["HSET", keys.position(p.ticket)] + fields)
                members.remove(keys.openPositions, .set, ticket)
                members.remove(keys.userPositions(p.userUUID), .set, ticket)
                // The trade record is the closed position copied (one command instead of every field again).
                commands.append(["COPY", keys.position(p.ticket), keys.trade(p.ticket), "REPLACE"])
                commands.append(["EXPIRE", keys.trade(p.ticket), "2592000"])
                // The day's text made once per day of a commit (most of a commit's closes share one).
                let t = MetaTraderTime(epochSeconds: Int(trade.closeTime))
                let dayNumber = t.year * 10_000 + t.month * 100 + t.day
                let day: String
                if let known = dayTexts[dayNumber] {
                    day = known
                } else {
                    day = t.dateText
                    dayTexts[dayNumber] = day
                }
                push(keys.closedPositions(p.userUUID), ticket)
                push(keys.trades(symbol: p.symbol), ticket)
                push(keys.trades(account: p.account), ticket)
                push(keys.trades(day: day), ticket)
                push(keys.tradesRecent, ticket)
                expiring.insert(keys.trades(day: day))
            case .statistics(let key, let value):
                // By the domain's key: the stored key is built once per record and commit, not once per event.
                if statistics.updateValue(value, forKey: key) == nil { statisticsOrder.append(key) }
            case .balance(let account, let balance, let closes):
                balances[account] = CloseValuation.centsText(TradeStatistics.cents(balance)) + "|" + String(closes)
            case .closeRequest(let request, let fields):
                let key = keys.close(request.ticket)
                if request.state == .pending { commands.append(["DEL", key]) }
                commands.append(["HSET", key, "state", request.state.rawValue, "kind", "close"] + fields)
                if request.state == .pending || request.state == .sent {
                    members.add(
                        keys.closesInFlight, .sortedSet, String(request.ticket),
                        TradeShard.number(request.deadline ?? 0))
                } else {
                    members.remove(keys.closesInFlight, .sortedSet, String(request.ticket))
                }
            case .slots(let user, let used):
                slots[user] = used
            case .orphan(_, let fields):
                push(keys.orphans, json(fields))
            case .userRisk(let uuid, let figures):
                if risks.updateValue(figures, forKey: uuid) == nil { riskOrder.append(uuid) }
            case .note(let list, let value):
                push(keys.list(list), value)
            case .event(let name, let fields):
                events.append(JSONValue.serialize(fields, setting: "event", to: name))
            case .eventText(let text):
                events.append(text)
            }
        }
        for uuid in riskOrder {
            // Listed again after a user's HSET dropped it: written once, with the latest figures.
            guard let figures = risks.removeValue(forKey: uuid) else { continue }
            commands.append(["HSET", keys.user(uuid)] + figures.userFields)
        }
        commands += members.commands
        for list in listOrder { commands.append(["LPUSH", list] + lists[list]!) }
        // Trimmed on every commit that pushed (one cheap command per list per commit, not per event).
        for list in listOrder { commands.append(["LTRIM", list, "0", String(listLimit - 1)]) }
        for key in expiring.sorted() { commands.append(["EXPIRE", key, "2592000"]) }
        if !recentFires.isEmpty {
            var add = ["ZADD", keys.firesRecent]
            for id in recentFires { add += [String(sequenceNumber(id)), id] }
            commands.append(add)
            commands.append(["ZREMRANGEBYRANK", keys.firesRecent, "0", String(-listLimit - 1)])
        }
        let statisticsKeys = statisticsOrder.map { keys.statistics($0) }
        for (key, stored) in zip(statisticsOrder, statisticsKeys) {
            commands.append(["HSET", stored] + statistics[key]!.redisFields.flatMap { [$0.0, $0.1] })
        }
        if !statisticsKeys.isEmpty { commands.append(["SADD", keys.statisticsIndex] + statisticsKeys) }
        if !balances.isEmpty {
            commands.append(
                ["HSET", keys.balances] + balances.sorted { $0.key < $1.key }.flatMap { [String($0.key), $0.value] })
        }
        if !slots.isEmpty {
            commands.append(
                ["HSET", keys.slots] + slots.sorted { $0.key < $1.key }.flatMap { [$0.key, String($0.value)] })
        }
        // The commit's events in one message, one JSON object per line (the webhook posts each on its own).
        if !events.isEmpty { commands.append(["PUBLISH", RedisKeys.events, events.joined(separator: "\n")]) }
        var state = ["HSET", keys.state, "sequence", String(sequence)]
        if let lastApplied { state += ["checkpoint", lastApplied] }
        commands.append(state)
        // A script can hand at most ~8 000 values to one call (Lua's stack): long commands go in parts.
        guard commands.contains(where: { $0.count > 2 + partItems }) else { return commands }
        return commands.flatMap { split($0) }
    }

    /// Items per command part (values for LPUSH/SADD, pairs for ZADD/HSET).
    static let partItems = 1_000

    /// A long variadic command as several of the same kind, in order (each part has the same effect as its
    /// share of the whole; LPUSH parts push in the same order).
    static func split(_ command: [String]) -> [[String]] {
        let width: Int
        switch command[0] {
        case "LPUSH", "SADD", "SREM", "ZREM", "HDEL": width = 1
        case "ZADD", "HSET": width = 2
        default: return [command]
        }
        guard command.count > 2 + partItems * width else { return [command] }
        let head = Array(command.prefix(2))
        return stride(from: 2, to: command.count, by: partItems * width).map { start in
            head + command[start..<min(command.count, start + partItems * width)]
        }
    }

    /// The number at the end of a fire id (`F-20261205-03-000042` → 42), its order in the shard.
    static func sequenceNumber(_ id: String) -> Int { Int(id.split(separator: "-").last ?? "") ?? 0 }

    static func n(_ value: Double) -> String { TradeShard.number(value) }

    static func json(_ fields: [String: String]) -> String { JSONValue.serialize(fields) }
}
