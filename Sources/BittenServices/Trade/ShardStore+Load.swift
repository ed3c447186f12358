import BittenCore
import Foundation
import Redis

/// A new owner reads its shard back.
extension ShardStore {
    /// What a new owner starts from: the shard as its last commit left it, and the checkpoint to replay from.
    public struct Loaded: Sendable {
        /// The shard's state as stored.
        public var shard: TradeShard
        /// The last ledger entry the stored state includes ("0" when none).
        public var checkpoint: String
    }

    /// Reads the whole shard back.
    public func load() async throws -> Loaded {
        let head = try await redis.pipeline([
            ["HGETALL", keys.state], ["SMEMBERS", keys.users], ["HGETALL", keys.fired],
            ["ZRANGE", keys.firesInFlight, "0", "-1"],
            ["SMEMBERS", keys.openPositions], ["ZRANGE", keys.closesInFlight, "0", "-1"],
            ["SMEMBERS", keys.statisticsIndex],
            ["HGETALL", keys.balances],
        ])
        for reply in head { try reply.orThrow() }
        let state = head[0].hash ?? [:]
        var shard = TradeShard(index: keys.shard, sequence: Int(state["sequence"] ?? "") ?? 0)
        func strings(_ reply: RedisReply) -> [String] { (reply.array ?? []).compactMap(\.string) }
        let userIDs = strings(head[1])
        let fireIDs = strings(head[3])
        let tickets = strings(head[4]).compactMap { Int($0) }
        let closeTickets = strings(head[5]).compactMap { Int($0) }
        let statisticsKeys = strings(head[6])
        var reads: [[String]] = userIDs.map { ["HGETALL", keys.user($0)] }
        reads += fireIDs.map { ["HGETALL", keys.fire($0)] }
        reads += tickets.map { ["HGETALL", keys.position($0)] }
        reads += closeTickets.map { ["HGETALL", keys.close($0)] }
        reads += statisticsKeys.map { ["HGETALL", $0] }
        var hashes: [[String: String]] = []
        for start in stride(from: 0, to: reads.count, by: 1_000) {
            for reply in try await redis.pipeline(Array(reads[start..<min(reads.count, start + 1_000)])) {
                hashes.append(try reply.orThrow().hash ?? [:])
            }
        }
        var at = 0
        func next() -> [String: String] {
            defer { at += 1 }
            return hashes[at]
        }
        for _ in userIDs {
            let hash = next()
            guard let uuid = hash["uuid"], let tier = hash["tier"].flatMap(Tier.init(name:)) else { continue }
            shard.restore(
                user: ShardUser(
                    uuid: uuid, tier: tier, riskOverride: hash["risk_override"] ?? "",
                    trading: TradingControl(userHash: hash), limits: RiskLimits(userHash: hash),
                    risk: RiskDay(userHash: hash)))
        }
        for id in fireIDs {
            let hash = next()
            guard let fire = Self.fire(id: id, hash) else { continue }
            shard.restore(fire: fire)
        }
        for _ in tickets {
            guard let position = Self.position(next()) else { continue }
            shard.restore(position: position)
        }
        for ticket in closeTickets {
            let hash = next()
            guard let state = hash["state"].flatMap(FireState.init(rawValue:)), let uuid = hash["user_uuid"] else {
                continue
            }
            shard.restore(
                close: CloseRequest(
                    ticket: ticket, userUUID: uuid, command: hash["command"] ?? "close_ticket", state: state,
                    deadline: hash["deadline"].flatMap(Double.init)))
        }
        for key in statisticsKeys {
            guard let statistics = TradeStatistics(redisHash: next()) else { continue }
            shard.restore(statistics: statistics, key: Self.coreStatisticsKey(key, tag: keys.tag))
        }
        for (account, value) in head[7].hash ?? [:] {
            let parts = value.split(separator: "|")
            guard let number = Int(account), parts.count == 2, let balance = Double(parts[0]),
                let closes = Int(parts[1])
            else { continue }
            shard.restore(balance: balance, closes: closes, of: number)
        }
        for (marker, value) in head[2].hash ?? [:] {
            let pair = marker.split(separator: "|", maxSplits: 1).map(String.init)
            let parts = value.split(separator: " ").map(String.init)
            guard pair.count == 2, parts.count == 2, let expires = Double(parts[1]) else { continue }
            shard.restoreMarker(signalID: pair[0], user: pair[1], fireID: parts[0], signalExpiresAt: expires)
        }
        return Loaded(shard: shard, checkpoint: state["checkpoint"] ?? "0")
    }

    /// `symbol_stats:{t3}:EURUSD` → `symbol_stats:EURUSD`.
    static func coreStatisticsKey(_ key: String, tag: String) -> String {
        key.replacingOccurrences(of: ":" + tag, with: "")
    }

    static func fire(id: String, _ h: [String: String]) -> FireInFlight? {
        func d(_ key: String) -> Double? { h[key].flatMap(Double.init) }
        guard let state = h["state"].flatMap(FireState.init(rawValue:)), let uuid = h["user_uuid"],
            let signal = h["signal_id"],
            let symbol = h["symbol"]
        else { return nil }
        var fire = FireInFlight(
            id: id, userUUID: uuid, signalID: signal, symbol: symbol, isBuy: h["direction"] == "BUY",
            stopLoss: d("sl") ?? 0, takeProfit: d("tp") ?? 0, lot: d("lot") ?? 0, tickSize: d("tick_size") ?? 0.00001,
            tickValue: d("tick_value") ?? 1, state: state,
            deadline: state == .pending || state == .sent ? d("deadline") : nil)
        fire.brokerSymbol = h["broker_symbol"] ?? ""
        fire.entry = h["entry"].flatMap(Double.init) ?? 0
        return fire
    }

    static func position(_ h: [String: String]) -> OpenPosition? {
        func d(_ key: String) -> Double? { h[key].flatMap(Double.init) }
        guard h["status"] == "open", let ticket = h["ticket"].flatMap({ Int($0) }), let uuid = h["user_uuid"],
            let symbol = h["symbol"],
            let lot = d("lot"), let open = d("open_price")
        else { return nil }
        return OpenPosition(
            ticket: ticket, fireID: h["fire_id"] ?? "", userUUID: uuid, account: h["account"].flatMap { Int($0) } ?? 0,
            symbol: symbol, isBuy: h["direction"] == "BUY", lot: lot, openPrice: open, stopLoss: d("sl") ?? 0,
            takeProfit: d("tp") ?? 0, openTime: d("open_time") ?? 0, tickSize: d("tick_size") ?? 0.00001,
            tickValue: d("tick_value") ?? 1)
    }
}
