import BittenCore
import Foundation
import Redis

/// Where one trade shard's state lives in Redis. Every key carries the shard's hash tag (`{t3}`), so a
/// shard's commit touches one Redis Cluster slot, and keeps the seed's prefix (`position:`, `trade:`,
/// `user:`, `global_trade_stats` …), so `SCAN position:*` still finds every position.
public struct ShardKeys: Sendable, Equatable {
    public let shard: Int
    public let tag: String

    public init(shard: Int) {
        self.shard = shard
        tag = "{t\(shard)}"
    }

    /// The shard of a user: a stable hash (FNV-1a, 64 bit) of the UUID's bytes, modulo the shard count.
    public static func shard(of uuid: String, count: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in uuid.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return Int(hash % UInt64(max(1, count)))
    }

    /// The owner's lease (`owner|fence`, with a time to live).
    public var lease: String { "shard:\(tag):lease" }
    /// `checkpoint` (the last ledger entry applied), `sequence` (the last fire number), `fence`.
    public var state: String { "shard:\(tag)" }
    public var users: String { "users:\(tag)" }
    public func user(_ uuid: String) -> String { "user:\(tag):\(uuid)" }
    public func fire(_ id: String) -> String { "fire:\(tag):\(id)" }
    /// Fires held in memory (pending, sent, timed out and not yet forgotten), by creation time.
    public var firesInFlight: String { "fires:inflight:\(tag)" }
    /// Every fire of the shard by creation time (trimmed), newest last.
    public var firesRecent: String { "fires:recent:\(tag)" }
    /// Idempotency markers: `signal|user` → `fire_id signal_expires_at`.
    public var fired: String { "fired:\(tag)" }
    /// Slots in use per user.
    public var slots: String { "slots:\(tag)" }
    public func position(_ ticket: Int) -> String { "position:\(tag):\(ticket)" }
    public var openPositions: String { "open_positions:\(tag)" }
    public func userPositions(_ uuid: String) -> String { "user_positions:\(tag):\(uuid)" }
    public func closedPositions(_ uuid: String) -> String { "closed_positions:\(tag):\(uuid)" }
    public func trade(_ ticket: Int) -> String { "trade:\(tag):\(ticket)" }
    public var tradesRecent: String { "trades:recent:\(tag)" }
    public func trades(symbol: String) -> String { "trades:\(tag):\(symbol)" }
    public func trades(account: Int) -> String { "trades:account:\(tag):\(account)" }
    public func trades(day: String) -> String { "trades:day:\(tag):\(day)" }
    public func close(_ ticket: Int) -> String { "close:\(tag):\(ticket)" }
    public var closesInFlight: String { "closes:inflight:\(tag)" }
    /// Per account: `balance|closes since`.
    public var balances: String { "account_balance:\(tag)" }
    /// The statistics keys of this shard (readers sum them over the shards).
    public var statisticsIndex: String { "stats_keys:\(tag)" }
    public var orphans: String { "orphan_confirmations:\(tag)" }
    /// An operator's list of this shard (`confirmations:untrusted:{t3}`).
    public func list(_ name: String) -> String { "\(name):\(tag)" }
    /// The confirmations of this shard's users, in arrival order.
    public var confirmations: String { "stream:confirmations:\(tag)" }

    /// A statistics record's key in this shard: `global_trade_stats:{t3}`, `symbol_stats:{t3}:EURUSD`, …
    public func statistics(_ coreKey: String) -> String {
        guard let colon = coreKey.firstIndex(of: ":") else { return "\(coreKey):\(tag)" }
        return "\(coreKey[..<colon]):\(tag)\(coreKey[colon...])"
    }
}

/// A trade shard's commits and loading. A commit stores everything one group of events decided in one
/// atomic step (MULTI/EXEC with the lease WATCHed on one server; one script with every key declared, all
/// in the shard's slot, on a cluster), and only while the committer holds the shard's lease with the
/// fence number it was given: an owner that was paused or cut off and lost the lease can never write again.
public struct ShardStore: Sendable {
    public let redis: RedisClient
    public let keys: ShardKeys
    /// Commits through the fenced script even on one server (as on a cluster).
    let scripted: Bool

    public init(redis: RedisClient, shard: Int) {
        self.init(redis: redis, shard: shard, scripted: false)
    }

    init(redis: RedisClient, shard: Int, scripted: Bool) {
        self.redis = redis
        keys = ShardKeys(shard: shard)
        self.scripted = scripted || redis.isCluster
    }

    /// Why a commit was refused.
    public struct Fenced: Error, CustomStringConvertible {
        public let shard: Int
        public let holder: String
        public var description: String { "shard \(shard) is no longer ours (lease: \(holder.isEmpty ? "none" : holder))" }
    }

    // MARK: lease

    /// Takes the shard's lease for this run (`instance/boot`), or renews it when this run holds it: the token
    /// (`instance/boot|fence`) every commit must present, or nil while another instance holds it. A new run of
    /// the same instance (a restart) takes its shard back at once with the next fence, so the old run, if it
    /// still lives, is refused its next commit.
    public func acquire(instance: String, boot: String, ttl: Duration) async throws -> String? {
        let ms = ttl.components.seconds * 1000 + ttl.components.attoseconds / 1_000_000_000_000_000
        return try await redis.evaluate(Self.acquireScript, keys: [keys.lease, keys.state], args: [instance, boot, String(max(1, ms))]).string
    }

    /// Gives the lease up (only when `token` still holds it).
    public func release(token: String) async throws {
        _ = try await redis.evaluate(Self.releaseScript, keys: [keys.lease], args: [token])
    }

    /// The lease scripts (`Scripts/acquire_lease.lua`, `Scripts/release_lease.lua`).
    static let acquireScript = LuaScripts.acquireLease
    static let releaseScript = LuaScripts.releaseLease

    /// Runs the commands only while the lease holds the committer's token (`Scripts/commit_fenced.lua`).
    static let commitScript = LuaScripts.commitFenced

    // MARK: commit

    /// Stores `changes` and the checkpoint (`lastApplied`, the last ledger entry they include; nil: unchanged)
    /// in one step, if `token` still holds the lease. Throws `Fenced` when it does not (nothing is written).
    /// Returns the commands Redis refused (the others were stored).
    @discardableResult
    public func commit(_ changes: [TradeChange], sequence: Int, lastApplied: String?, token: String) async throws -> [CommandFailure] {
        let commands = Self.commands(for: changes, keys: keys, sequence: sequence, lastApplied: lastApplied)
        return try await Self.commit([Pending(store: self, commands: commands, token: token)], redis: redis)[0].get()
    }

    /// A command of a commit that Redis refused (a key of another type, written by hand, most likely): the
    /// rest of the commit is stored, as MULTI/EXEC does, and the refusal is reported, never retried.
    public struct CommandFailure: Sendable, Equatable, CustomStringConvertible {
        public var shard: Int
        /// The command's name and first key.
        public var command: String
        public var error: String
        public var description: String { "shard \(shard): \(command): \(error)" }
    }

    /// The name and key of a command, as a failure names it.
    static func head(_ command: [String]) -> String { command.prefix(2).joined(separator: " ") }

    /// The fenced script: the commands run only while the lease holds `token`; those Redis refuses are reported.
    func script(_ commands: [[String]], token: String) async throws -> [CommandFailure] {
        var touched: Set<String> = [keys.lease]
        var keyList = [keys.lease]
        var args = [token]
        args.reserveCapacity(commands.reduce(1) { $0 + $1.count + 1 })
        for command in commands {
            args.append(String(command.count))
            args += command
            // A PUBLISH names a channel, not a key.
            if command.count > 1, command[0] != "PUBLISH", touched.insert(command[1]).inserted { keyList.append(command[1]) }
            // COPY / SMOVE name a second key.
            if command[0] == "COPY", command.count > 2, touched.insert(command[2]).inserted { keyList.append(command[2]) }
        }
        do {
            // {commands run, {index, error}…}: index is the 1-based position of a refused command.
            let reply = try await redis.evaluate(Self.commitScript, keys: keyList, args: args)
            let refused = reply.array?.dropFirst().first?.array ?? []
            return stride(from: 0, to: refused.count - 1, by: 2).compactMap { i -> CommandFailure? in
                guard let position = refused[i].int, commands.indices.contains(position - 1) else { return nil }
                return CommandFailure(shard: keys.shard, command: Self.head(commands[position - 1]), error: refused[i + 1].string ?? "")
            }
        } catch let error as RedisError where error.message.contains("FENCED") {
            let holder = error.message.components(separatedBy: "FENCED ").last ?? ""
            throw Fenced(shard: keys.shard, holder: holder.trimmingCharacters(in: .whitespaces))
        }
    }

    /// One shard's part of a commit round.
    public struct Pending: Sendable {
        public var store: ShardStore
        public var commands: [[String]]
        public var token: String
    }

    /// Stores several shards' commits; one result per commit, in order. On one server they go together in
    /// one MULTI/EXEC on a connection of their own, every lease checked first and every shard's state hash
    /// WATCHed (a new owner's lease bumps its `fence` there): a shard whose lease is not its token any more
    /// is refused (`Fenced`) and left out; if a shard changes hands between the check and EXEC, nothing is
    /// written and the round is checked and sent once more, then fails (to be tried again). On a
    /// cluster each shard's commit is its own fenced script, all at once.
    /// A stored commit reports the commands Redis refused (`CommandFailure`); the rest of it is stored.
    public static func commit(_ pending: [Pending], redis: RedisClient) async -> [Result<[CommandFailure], any Error>] {
        guard !pending.isEmpty else { return [] }
        if pending.contains(where: \.store.scripted) {
            return await withTaskGroup(of: (Int, Result<[CommandFailure], any Error>).self) { group in
                for (index, item) in pending.enumerated() {
                    group.addTask {
                        do {
                            return (index, .success(try await item.store.script(item.commands, token: item.token)))
                        } catch {
                            return (index, .failure(error))
                        }
                    }
                }
                var finished: [(Int, Result<[CommandFailure], any Error>)] = []
                for await item in group { finished.append(item) }
                return finished.sorted { $0.0 < $1.0 }.map(\.1)
            }
        }
        do {
            return try await redis.withConnection { connection in
                let leases = pending.map(\.store.keys.lease)
                // WATCHed: each shard's state hash, which a new owner's lease bumps (its `fence`) and only the
                // owner's commits write; not the lease itself, which every renewal touches.
                let watched = pending.map(\.store.keys.state)
                let head = try connection.pipeline([["WATCH"] + watched] + leases.map { ["GET", $0] })
                try head[0].orThrow()
                var results = [Result<[CommandFailure], any Error>](repeating: .success([]), count: pending.count)
                var commands: [[String]] = []
                var owners: [Int] = []  // the pending commit each command belongs to
                for (index, item) in pending.enumerated() {
                    let holder = try head[index + 1].orThrow().string
                    if holder == item.token {
                        commands += item.commands
                        owners += Array(repeating: index, count: item.commands.count)
                    } else {
                        results[index] = .failure(Fenced(shard: item.store.keys.shard, holder: holder ?? ""))
                    }
                }
                guard !commands.isEmpty else {
                    _ = try? connection.command(["UNWATCH"])
                    return results
                }
                var replies: [RedisReply]
                do {
                    replies = try connection.transaction(commands)
                } catch let error as RedisError where error.code == .transactionAborted {
                    // A lease was touched between the check and EXEC (its owner renewing it, most often):
                    // nothing was written; checked and sent once more.
                    let again = try connection.pipeline([["WATCH"] + watched] + leases.map { ["GET", $0] })
                    try again[0].orThrow()
                    for (index, item) in pending.enumerated() {
                        guard case .success = results[index] else { continue }
                        if try again[index + 1].orThrow().string != item.token {
                            _ = try? connection.command(["UNWATCH"])
                            throw error
                        }
                    }
                    replies = try connection.transaction(commands)
                }
                // EXEC runs every command; one Redis refuses is in its reply, the others are stored.
                for (position, reply) in replies.enumerated() where position < commands.count {
                    guard case .error(let message) = reply else { continue }
                    let owner = owners[position]
                    let failure = CommandFailure(shard: pending[owner].store.keys.shard, command: Self.head(commands[position]), error: message)
                    if case .success(var failures) = results[owner] {
                        failures.append(failure)
                        results[owner] = .success(failures)
                    }
                }
                return results
            }
        } catch {
            return pending.map { _ in .failure(error) }
        }
    }

    /// Where trade events are published: one message per commit, one JSON object per line.
    public static let eventsChannel = "bitten:events"

    /// Bounded lists are trimmed to this many entries.
    static let listLimit = 1_000

    /// The Redis commands of one commit: per-event writes in order, then what one commit writes once
    /// (statistics, balances, slot counts, list pushes, the checkpoint).
    static func commands(for changes: [TradeChange], keys: ShardKeys, sequence: Int, lastApplied: String?) -> [[String]] {
        var commands: [[String]] = []
        var statistics: [String: TradeStatistics] = [:]
        var statisticsOrder: [String] = []
        var balances: [Int: String] = [:]
        var slots: [String: Int] = [:]
        var lists: [String: [String]] = [:]
        var listOrder: [String] = []
        var expiring: Set<String> = []
        var recentFires: [String] = []
        var events: [String] = []
        func push(_ list: String, _ value: String) {
            if lists[list] == nil { listOrder.append(list) }
            lists[list, default: []].append(value)
        }
        for change in changes {
            switch change {
            case .user(let user, let fields):
                commands.append(["HSET", keys.user(user.uuid)] + fields
                    + ["uuid", user.uuid, "tier", user.tier.rawValue, "risk_override", user.riskOverride])
                commands.append(["SADD", keys.users, user.uuid])
            case .fireCreated(let fire, let expiresAt, let fields):
                // The caller's fields, then what the shard itself reloads the fire from (so those are always there).
                var core = ["state", "pending", "holds_slot", "1", "fire_id", fire.id, "shard", String(keys.shard),
                            "user_uuid", fire.userUUID, "signal_id", fire.signalID, "symbol", fire.symbol,
                            "direction", fire.isBuy ? "BUY" : "SELL", "sl", n(fire.stopLoss), "tp", n(fire.takeProfit), "lot", n(fire.lot),
                            "tick_size", n(fire.tickSize), "tick_value", n(fire.tickValue)]
                if let deadline = fire.deadline { core += ["deadline", n(deadline)] }
                if !fire.brokerSymbol.isEmpty { core += ["broker_symbol", fire.brokerSymbol] }
                commands.append(["HSET", keys.fire(fire.id)] + fields + core)
                commands.append(["HSET", keys.fired, fire.signalID + "|" + fire.userUUID, fire.id + " " + TradeShard.number(expiresAt)])
                commands.append(["ZADD", keys.firesInFlight, TradeShard.number(fire.deadline ?? 0), fire.id])
                recentFires.append(fire.id)
            case .fireMoved(let id, let state, let fields):
                commands.append(["HSET", keys.fire(id), "state", state.rawValue] + fields)
                if state.isFinal { commands.append(["ZREM", keys.firesInFlight, id]) }
            case .fireForgotten(let id):
                commands.append(["ZREM", keys.firesInFlight, id])
            case .markerForgotten(let signalID, let user):
                commands.append(["HDEL", keys.fired, signalID + "|" + user])
            case .positionOpened(let p, let signalID, let brokerSymbol, let dropped):
                var fields = ["ticket", String(p.ticket), "fire_id", p.fireID, "signal_id", signalID, "user_uuid", p.userUUID,
                              "account", String(p.account), "symbol", p.symbol, "direction", p.isBuy ? "BUY" : "SELL",
                              "lot", n(p.lot), "open_price", n(p.openPrice), "sl", n(p.stopLoss), "tp", n(p.takeProfit),
                              "open_time", n(p.openTime), "tick_size", n(p.tickSize), "tick_value", n(p.tickValue), "status", "open"]
                if !brokerSymbol.isEmpty, brokerSymbol != p.symbol { fields += ["broker_symbol", brokerSymbol] }
                if let dropped {
                    fields += ["sl_dropped", dropped.stopLoss ? "1" : "0", "tp_dropped", dropped.takeProfit ? "1" : "0",
                               "sl_requested", n(dropped.requestedStopLoss), "tp_requested", n(dropped.requestedTakeProfit)]
                }
                commands.append(["HSET", keys.position(p.ticket)] + fields)
                commands.append(["SADD", keys.openPositions, String(p.ticket)])
                commands.append(["SADD", keys.userPositions(p.userUUID), String(p.ticket)])
            case .positionClosed(let trade):
                let p = trade.position
                let v = trade.valuation
                var fields = ["status", "closed", "close_price", v.closePriceText, "profit", v.profitText,
                              "closed_at", n(trade.closeTime), "close_time", n(trade.closeTime),
                              "duration", String(Int((trade.closeTime - p.openTime).rounded())), "result", v.result.rawValue,
                              "close_price_source", v.closePriceSource, "close_reason", trade.reason, "profit_source", v.profitSource]
                if let byPrice = v.byPriceCents, let byBalance = v.byBalanceCents {
                    fields += ["profit_by_price", CloseValuation.centsText(byPrice), "profit_by_balance", CloseValuation.centsText(byBalance)]
                }
                let ticket = String(p.ticket)
                commands.append(["HSET", keys.position(p.ticket)] + fields)
                commands.append(["SREM", keys.openPositions, ticket])
                commands.append(["SREM", keys.userPositions(p.userUUID), ticket])
                // The trade record is the closed position copied (one command instead of every field again).
                commands.append(["COPY", keys.position(p.ticket), keys.trade(p.ticket), "REPLACE"])
                commands.append(["EXPIRE", keys.trade(p.ticket), "2592000"])
                let t = MetaTraderTime(epochSeconds: Int(trade.closeTime))
                let day = String(format: "%04d-%02d-%02d", t.year, t.month, t.day)
                push(keys.closedPositions(p.userUUID), ticket)
                push(keys.trades(symbol: p.symbol), ticket)
                push(keys.trades(account: p.account), ticket)
                push(keys.trades(day: day), ticket)
                push(keys.tradesRecent, ticket)
                expiring.insert(keys.trades(day: day))
            case .statistics(let key, let value):
                let stored = keys.statistics(key)
                if statistics.updateValue(value, forKey: stored) == nil { statisticsOrder.append(stored) }
            case .balance(let account, let balance, let closes):
                balances[account] = CloseValuation.centsText(TradeStatistics.cents(balance)) + "|" + String(closes)
            case .closeRequest(let request, let fields):
                let key = keys.close(request.ticket)
                if request.state == .pending { commands.append(["DEL", key]) }
                commands.append(["HSET", key, "state", request.state.rawValue, "kind", "close"] + fields)
                if request.state == .pending || request.state == .sent {
                    commands.append(["ZADD", keys.closesInFlight, TradeShard.number(request.deadline ?? 0), String(request.ticket)])
                } else {
                    commands.append(["ZREM", keys.closesInFlight, String(request.ticket)])
                }
            case .slots(let user, let used):
                slots[user] = used
            case .orphan(_, let fields):
                push(keys.orphans, json(fields))
            case .note(let list, let value):
                push(keys.list(list), value)
            case .event(let name, var fields):
                fields["event"] = name
                events.append(json(fields))
            }
        }
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
        for key in statisticsOrder {
            commands.append(["HSET", key] + statistics[key]!.redisFields.flatMap { [$0.0, $0.1] })
        }
        if !statisticsOrder.isEmpty { commands.append(["SADD", keys.statisticsIndex] + statisticsOrder) }
        if !balances.isEmpty {
            commands.append(["HSET", keys.balances] + balances.sorted { $0.key < $1.key }.flatMap { [String($0.key), $0.value] })
        }
        if !slots.isEmpty {
            commands.append(["HSET", keys.slots] + slots.sorted { $0.key < $1.key }.flatMap { [$0.key, String($0.value)] })
        }
        // The commit's events in one message, one JSON object per line (the webhook posts each on its own).
        if !events.isEmpty { commands.append(["PUBLISH", Self.eventsChannel, events.joined(separator: "\n")]) }
        var state = ["HSET", keys.state, "sequence", String(sequence)]
        if let lastApplied { state += ["checkpoint", lastApplied] }
        commands.append(state)
        // A script can hand at most ~8 000 values to one call (Lua's stack): long commands go in parts.
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
    private static func sequenceNumber(_ id: String) -> Int { Int(id.split(separator: "-").last ?? "") ?? 0 }

    private static func n(_ value: Double) -> String { TradeShard.number(value) }

    private static func json(_ fields: [String: String]) -> String { JSONValue.serialize(fields) }

    // MARK: loading

    /// What a new owner starts from: the shard as its last commit left it, and the checkpoint to replay from.
    public struct Loaded: Sendable {
        public var shard: TradeShard
        /// The last ledger entry the stored state includes ("0" when none).
        public var checkpoint: String
    }

    /// Reads the whole shard back.
    public func load() async throws -> Loaded {
        let head = try await redis.pipeline([
            ["HGETALL", keys.state], ["SMEMBERS", keys.users], ["HGETALL", keys.fired], ["ZRANGE", keys.firesInFlight, "0", "-1"],
            ["SMEMBERS", keys.openPositions], ["ZRANGE", keys.closesInFlight, "0", "-1"], ["SMEMBERS", keys.statisticsIndex],
            ["HGETALL", keys.balances],
        ])
        for reply in head { try reply.orThrow() }
        let state = head[0].hash ?? [:]
        var shard = TradeShard(index: keys.shard, sequence: Int(state["sequence"] ?? "") ?? 0)
        func strings(_ reply: RedisReply) -> [String] { (reply.array ?? []).compactMap(\.string) }
        let userIDs = strings(head[1]), fireIDs = strings(head[3]), tickets = strings(head[4]).compactMap { Int($0) }
        let closeTickets = strings(head[5]).compactMap { Int($0) }, statisticsKeys = strings(head[6])
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
        func next() -> [String: String] { defer { at += 1 }; return hashes[at] }
        for _ in userIDs {
            let hash = next()
            guard let uuid = hash["uuid"], let tier = hash["tier"].flatMap(Tier.init(name:)) else { continue }
            shard.restore(user: ShardUser(uuid: uuid, tier: tier, riskOverride: hash["risk_override"] ?? ""))
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
            guard let state = hash["state"].flatMap(FireState.init(rawValue:)), let uuid = hash["user_uuid"] else { continue }
            shard.restore(close: CloseRequest(ticket: ticket, userUUID: uuid, command: hash["command"] ?? "close_ticket", state: state,
                                              deadline: hash["deadline"].flatMap(Double.init)))
        }
        for key in statisticsKeys {
            guard let statistics = TradeStatistics(redisHash: next()) else { continue }
            shard.restore(statistics: statistics, key: Self.coreStatisticsKey(key, tag: keys.tag))
        }
        for (account, value) in head[7].hash ?? [:] {
            let parts = value.split(separator: "|")
            guard let number = Int(account), parts.count == 2, let balance = Double(parts[0]), let closes = Int(parts[1]) else { continue }
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
        guard let state = h["state"].flatMap(FireState.init(rawValue:)), let uuid = h["user_uuid"], let signal = h["signal_id"],
              let symbol = h["symbol"] else { return nil }
        var fire = FireInFlight(id: id, userUUID: uuid, signalID: signal, symbol: symbol, isBuy: h["direction"] == "BUY",
                                stopLoss: d("sl") ?? 0, takeProfit: d("tp") ?? 0, lot: d("lot") ?? 0, tickSize: d("tick_size") ?? 0.00001,
                                tickValue: d("tick_value") ?? 1, state: state,
                                deadline: state == .pending || state == .sent ? d("deadline") : nil)
        fire.brokerSymbol = h["broker_symbol"] ?? ""
        return fire
    }

    static func position(_ h: [String: String]) -> OpenPosition? {
        func d(_ key: String) -> Double? { h[key].flatMap(Double.init) }
        guard h["status"] == "open", let ticket = h["ticket"].flatMap({ Int($0) }), let uuid = h["user_uuid"], let symbol = h["symbol"],
              let lot = d("lot"), let open = d("open_price") else { return nil }
        return OpenPosition(ticket: ticket, fireID: h["fire_id"] ?? "", userUUID: uuid, account: h["account"].flatMap { Int($0) } ?? 0,
                            symbol: symbol, isBuy: h["direction"] == "BUY", lot: lot, openPrice: open, stopLoss: d("sl") ?? 0,
                            takeProfit: d("tp") ?? 0, openTime: d("open_time") ?? 0, tickSize: d("tick_size") ?? 0.00001,
                            tickValue: d("tick_value") ?? 1)
    }
}

/// A ledger entry as a shard applies it.
public enum LedgerEvent: Sendable, Equatable {
    case fire(FireAnswer)
    case close(CloseAnswer)
    /// The position watcher saw the market cross a stop (`stop_loss`) or target (`take_profit`).
    case crossed(ticket: Int, userUUID: String, reason: String, level: Double, at: Double)

    /// The user whose shard applies it.
    public var userUUID: String {
        switch self {
        case .fire(let answer): answer.userUUID
        case .close(let answer): answer.userUUID
        case .crossed(_, let uuid, _, _, _): uuid
        }
    }

    /// The event of a stream entry (the confirmation service's `payload` with `received_at` and `quotes`,
    /// or the position watcher's inferred close), or nil when it cannot be read. Untrusted entries are
    /// the caller's to skip.
    public init?(entry: StreamEntry) {
        guard let receivedAt = entry["received_at"], let at = Double(receivedAt) else { return nil }
        if entry["type"] == InferredClose.type {
            guard let ticket = entry["ticket"].flatMap({ Int($0) }), let reason = entry["reason"],
                  reason == "stop_loss" || reason == "take_profit", let level = entry["price"].flatMap(Double.init) else { return nil }
            self = .crossed(ticket: ticket, userUUID: entry["user_uuid"] ?? "", reason: reason, level: level, at: at)
            return
        }
        guard let payload = entry["payload"], let message = try? EAMessage.decode(Array(payload.utf8), channel: .confirm) else { return nil }
        self.init(message: message, receivedAt: at, quotes: entry["quotes"] ?? "")
    }

    /// The event of a confirmation as the confirmation service decoded it, received at `receivedAt` (read
    /// back from its `received_at` text, so it is the same number a replay of the entry gives) with the
    /// market `quotes` that went with it; nil for any other message or a confirmation without a fire id.
    public init?(message: EAMessage, receivedAt at: Double, quotes: String) {
        switch message {
        case .confirmation(let c):
            guard !c.fireID.isEmpty else { return nil }
            self = .fire(FireAnswer(fireID: c.fireID, success: c.succeeded, userUUID: c.userUUID, ticket: c.ticket, price: c.price,
                                    lot: c.lot, message: c.message, account: c.accountNumber, balance: c.account.balance, at: at))
        case .closeConfirmation(let c):
            self = .close(CloseAnswer(ticket: c.ticket, success: c.succeeded, closePrice: c.closePrice, message: c.message,
                                      account: c.accountNumber, userUUID: c.userUUID, commandType: c.commandType,
                                      balance: c.account.balance, quotes: quotes, at: at))
        default:
            return nil
        }
    }
}

extension TradeShard {
    /// Applies one ledger event; the outcome in the ledger's words.
    public mutating func apply(_ event: LedgerEvent, streamID: String) -> String {
        switch event {
        case .fire(let answer): apply(answer, streamID: streamID)
        case .close(let answer): apply(answer, streamID: streamID)
        case .crossed(let ticket, _, let reason, let level, let at): crossed(ticket: ticket, level: level, reason: reason, at: at)
        }
    }
}
