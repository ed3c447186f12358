import BittenCore
import BittenServices
import BittenTestSupport
import Foundation
import Logging
import Redis
import Synchronization
import Testing

/// A trade engine on a real redis-server, fed through its ledger streams as the confirmation service and
/// the position watcher feed it.
struct LedgerHarness {
    let server: RedisServerProcess
    let client: RedisClient
    let engine: TradeEngine
    let store: TradeStore
    let redis: RedisConnection
    let task: Task<Void, any Error>
    /// Appends as the confirmation service of the engine's own process does: one `m` message per stream
    /// entry, handed to the engine with its event decoded (`TradeEngine.appended`) instead of read back.
    var handOver = false
    /// Entries the engine took from the hand-over (the others its reader read).
    let handedOver = Counted()

    final class Counted: Sendable {
        let value = Mutex(0)
        func withLock<T>(_ body: (inout Int) -> T) -> T { value.withLock { body(&$0) } }
    }

    static func start(
        shards: Int = 4, server existing: RedisServerProcess? = nil, instance: String = "ledger-test",
        handOver: Bool = false, maxUncommitted: Int? = nil, handOverGrace: Duration? = nil,
        logger: Logger = Logger(label: "test"), configure: (inout TradeEngine.Settings) -> Void = { _ in }
    ) async throws -> LedgerHarness {
        let server = try existing ?? RedisServerProcess()
        let client = RedisClient(
            url: try RedisURL(parsing: server.url), poolSize: 2, logger: Logger(label: "bitten.test"))
        var settings = TradeEngine.Settings()
        settings.shards = shards
        settings.instance = instance
        // Handing over, the reader reads only when woken (or after a minute): it does not race the hand-over.
        settings.pollInterval = handOver ? .seconds(60) : .milliseconds(50)
        if let maxUncommitted { settings.maxUncommitted = maxUncommitted }
        if let handOverGrace { settings.handOverGrace = handOverGrace }
        configure(&settings)
        let engine = TradeEngine(
            redis: client, settings: settings, board: ServiceBoard(), logger: logger)
        let task = Task { try await engine.run() }
        var harness = LedgerHarness(
            server: server, client: client, engine: engine, store: TradeStore(redis: client, engine: engine),
            redis: try RedisConnection(url: RedisURL(parsing: server.url)), task: task)
        harness.handOver = handOver
        guard try await eventually(.seconds(10), { engine.ownedShards == shards }) else {
            throw HarnessError("shards not taken")
        }
        return harness
    }

    struct HarnessError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Stops the engine (what it applied is committed first) and the client; the server keeps running.
    func stop() async {
        task.cancel()
        _ = await task.result
        client.shutdown()
    }

    func keys(_ uuid: String) -> ShardKeys { ShardKeys(shard: engine.shard(of: uuid)) }

    /// Appends a ledger entry for `uuid` as the confirmation service does.
    @discardableResult
    func append(_ uuid: String, _ fields: [(String, String)]) throws -> String {
        let key = keys(uuid).confirmations
        let all = [("user_uuid", uuid)] + fields
        guard handOver else { return try redis.xadd(key, fields: all) }
        let previous =
            try redis.command(["XREVRANGE", key, "+", "-", "COUNT", "1"]).array?.first?.array?.first?.string ?? "0"
        let id = try redis.xadd(key, fields: [("m", LedgerRecord.encode(all))])
        let message = StreamEntry(id: id + "#0", fields: all)
        // Decoded as the service decodes it: the message, the time from its text, the quotes that went with it.
        let payload = message["payload"] ?? ""
        let event = (try? EAMessage.decode(Array(payload.utf8), channel: .confirm)).flatMap {
            LedgerEvent(
                message: $0, receivedAt: Double(message["received_at"] ?? "") ?? 0, quotes: message["quotes"] ?? "")
        }
        if engine.appended(shard: engine.shard(of: uuid), id: id, after: previous, messages: [message], events: [event])
        {
            handedOver.withLock { $0 += 1 }
        }
        return id
    }

    /// Waits until everything in the user's ledger is applied and committed.
    func settle(_ uuid: String) async throws {
        let shard = engine.shard(of: uuid)
        let last =
            try redis.command(["XREVRANGE", keys(uuid).confirmations, "+", "-", "COUNT", "1"]).array?.first?.array?
            .first?.string ?? "0"
        // Handing over, the reader is left asleep: whatever the hand-over did not take stays unapplied.
        if !handOver { engine.wake() }
        guard try await eventually(.seconds(10), { engine.committedCheckpoint(shard) == last }) else {
            throw HarnessError(
                "shard \(shard) did not reach \(last): \(engine.committedCheckpoint(shard) ?? "not owned")")
        }
    }

    /// The user and `count` positions opened through the engine the way the fire desk
    /// and the EA v2.05 do it: reserved, sent, filled by a confirmation on the ledger that reports the balance.
    func openPositions(
        _ uuid: String, count: Int, firstTicket: Int = 900_000, balance: Double = 10_000, tier: Tier = .commander,
        isBuy: Bool = true
    ) async throws -> [String] {
        if try await store.user(uuid) == nil {
            try await store.save(UserRecord(uuid: uuid, tier: tier, displayName: uuid, createdAt: 1))
        }
        var ids: [String] = []
        for index in 0..<count {
            let signal = "SIG_L_\(firstTicket + index)"
            let fire = FireInFlight(
                id: "", userUUID: uuid, signalID: signal, symbol: "EURUSD", isBuy: isBuy,
                stopLoss: isBuy ? 1.099 : 1.101, takeProfit: isBuy ? 1.102 : 1.098, lot: 0, tickSize: 0.00001,
                tickValue: 1, deadline: 4_000_000_000)
            let variants = Tier.allCases.map {
                SizingChoice(key: $0.rawValue + "|", slots: 100, lot: 1, fields: ["lot", "1", "tier", $0.rawValue])
            }
            let done = try await engine.perform(uuid) {
                $0.reserve(
                    fire, variants: variants, signalExpiresAt: 4_000_000_000, date: "20261205",
                    fields: [
                        "kind", "fire", "signal_id", signal, "user_uuid", uuid, "symbol", "EURUSD",
                        "direction", isBuy ? "BUY" : "SELL", "entry", "1.1",
                    ])
            }
            guard case .reserved(let id, _) = done.value else { throw HarnessError("not reserved: \(done.value)") }
            try engine.apply(uuid) { $0.sent(id, at: 1000, deadline: 4_000_000_000) }
            ids.append(id)
            let payload =
                #"{"type":"confirmation","command_type":"fire","fire_id":"\#(id)","node_id":"NODE_55501_1","user_uuid":"\#(uuid)","status":"success","ticket":\#(firstTicket + index),"price":1.10000,"lot":1.00,"message":"Trade executed successfully","account":55501,"currency":"USD","balance":\#(String(format: "%.2f", balance)),"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.12.05 10:00:00"}"#
            try append(uuid, [("type", "confirmation"), ("received_at", "1000"), ("payload", payload)])
        }
        try await settle(uuid)
        return ids
    }

    /// The closes as the EA v2.05 answers them (`../shared/fixtures/ea/close_confirmation_v205.json`):
    /// close price 0, the balance after the close; the market quote at arrival goes with the entry.
    func appendCloses(
        _ uuid: String, profits: [Int], firstTicket: Int = 900_000, balanceOffset: [Int: Double] = [:],
        startBalance: Double = 10_000
    ) throws {
        var balance = startBalance
        let template = String(decoding: try Fixtures.data("ea/close_confirmation_v205.json"), as: UTF8.self)
        for (index, profit) in profits.enumerated() {
            let bid = String(format: "%.5f", 1.1 + Double(profit) / 100_000)
            balance += Double(profit) + (balanceOffset[index] ?? 0)
            let payload = template.replacingOccurrences(of: "user_5512093", with: uuid)
                .replacingOccurrences(of: "508812347", with: String(firstTicket + index))
                .replacingOccurrences(of: "\"lot\":0.35", with: "\"lot\":1.00")
                .replacingOccurrences(of: "\"account\":94017233", with: "\"account\":55501")
                .replacingOccurrences(
                    of: "\"balance\":10032.20", with: "\"balance\":" + String(format: "%.2f", balance))
            try append(
                uuid,
                [
                    ("type", "close_confirmation"), ("received_at", String(2000 + index)), ("payload", payload),
                    ("quotes", "EURUSD:\(bid):\(bid):own;XAUUSD:2641.1:2641.5:any"),
                ])
        }
    }

    func hash(_ key: String) throws -> [String: String] { try redis.command(["HGETALL", key]).hash ?? [:] }

    /// The fields of the EA v2.05's answer to `close_ticket` for `ticket` (close price 0), as the confirmation
    /// writer puts them in a ledger message, with the market quote at arrival.
    static func closeFields(_ uuid: String, ticket: Int) throws -> [(String, String)] {
        let template = String(decoding: try Fixtures.data("ea/close_confirmation_v205.json"), as: UTF8.self)
        let payload = template.replacingOccurrences(of: "user_5512093", with: uuid).replacingOccurrences(
            of: "508812347", with: String(ticket))
        return [
            ("user_uuid", uuid), ("type", "close_confirmation"), ("received_at", "2000"), ("payload", payload),
            ("quotes", "EURUSD:1.10010:1.10012:own"),
        ]
    }
}
