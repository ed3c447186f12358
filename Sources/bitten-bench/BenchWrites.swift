import ArgumentParser
import Foundation
import Redis

extension Bench {
    /// `bitten-bench writes`: what each part of a confirmation's writes costs Redis, with no server in between (the
    /// trade engine's write shape, the same with its sets changed once per event as before, without one part at a
    /// time, and the shape issue 16 asks for), each trade a fill and a close, in MULTI/EXEC commits as the engine's.
    struct Writes: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Redis CPU and AOF bytes per confirmation for the trade engine's write shape and for lighter ones (what each key and command costs)."
        )

        @Option(help: "Trades per shape and round; each is one fill and one close confirmation.") var trades = 12_000
        @Option(help: "Trades per MULTI/EXEC commit.") var batch = 200
        @Option(help: "Rounds over all shapes (the figures are each shape's median over the rounds).") var rounds = 5
        @Flag(help: "Run Redis without AOF.") var noAOF = false

        /// Which parts of today's writes a shape leaves out.
        struct Shape {
            var name: String
            /// The fire's hash written again at the fill (state, ticket, fill price …), and its ZREM from the in-flight set.
            var fireHash = true
            /// The shard's set of open tickets (SADD at the fill, SREM at the close), besides the user's.
            var shardOpenSet = true
            /// The closed position copied to its `trade:` record (COPY and PEXPIREAT).
            var tradeCopy = true
            /// The position's fields as written today (one hash field each), or packed into a few.
            var fieldPerValue = true
            /// The open-ticket sets and the in-flight set changed once per key and commit (every member in one
            /// SADD, SREM or ZREM), as the engine does since 2026-12-06, or once per event as before.
            var setsPerCommit = true
        }

        static let shapes: [Shape] = [
            Shape(name: "the engine's"),
            Shape(name: "sets changed once per event", setsPerCommit: false),
            Shape(name: "without the fire hash at the fill", fireHash: false),
            Shape(name: "without the trade copy", tradeCopy: false),
            Shape(name: "without the shard open set", shardOpenSet: false),
            Shape(name: "position fields packed", fieldPerValue: false),
            Shape(
                name: "issue 16's shape (the four above)", fireHash: false, shardOpenSet: false, tradeCopy: false,
                fieldPerValue: false),
        ]

        func run() throws {
            guard trades > 0, batch > 0, rounds > 0 else { throw ValidationError("--trades, --batch and --rounds > 0") }
            let directory = NSTemporaryDirectory() + "bitten-bench-writes-\(getpid())"
            // No AOF rewrite during the run: a rewrite shrinks the file, and the bytes per confirmation are read from it.
            let redis = try LocalRedisServer(
                port: LocalRedisServerPort.next(), directory: directory, appendOnly: !noAOF,
                extraArguments: ["--auto-aof-rewrite-percentage", "0"])
            defer {
                redis.stop()
                try? FileManager.default.removeItem(atPath: directory)
            }
            let connection = try RedisConnection(url: redis.url)
            print(
                "writes: \(trades) trades (\(2 * trades) confirmations) per shape and round, \(batch) trades per MULTI/EXEC, \(rounds) round(s), AOF \(noAOF ? "off" : "everysec"); each shape from an empty keyspace, one after the other on the same Redis"
            )
            var cpu: [[Double]] = Array(repeating: [], count: Self.shapes.count)
            var aof: [[Double]] = Array(repeating: [], count: Self.shapes.count)
            var counts: [(commands: Double, arguments: Double)] = Array(repeating: (0, 0), count: Self.shapes.count)
            var next = 700_000_000
            for round in 0..<rounds {
                // Each round in another order, so no shape always runs while the file is shortest or longest.
                let order = round % 2 == 0 ? Array(Self.shapes.indices) : Array(Self.shapes.indices.reversed())
                for index in order {
                    let shape = Self.shapes[index]
                    // Each shape from an empty keyspace (the keys of the shapes before would slow the later ones).
                    _ = try connection.command(["FLUSHALL", "SYNC"]).orThrow()
                    let cpuBefore = ServerUnderTest.redisCPUSeconds(connection)
                    let aofBefore = ServerUnderTest.redisAOF(connection).bytes
                    var commands = 0
                    var arguments = 0
                    // Each commit fills a batch and closes the one filled before (the last commit only closes).
                    for start in stride(from: 0, to: trades + batch, by: batch) {
                        let filling = (next + min(trades, start))..<(next + min(trades, start + batch))
                        let closing = (next + max(0, start - batch))..<(next + min(trades, start))
                        let block = Self.commit(shape: shape, filling: filling, closing: closing)
                        commands += block.count
                        arguments += block.reduce(0) { $0 + $1.count }
                        _ = try RedisConnection.execResult(try connection.pipeline([["MULTI"]] + block + [["EXEC"]]))
                    }
                    next += trades
                    let confirmations = Double(2 * trades)
                    cpu[index].append((ServerUnderTest.redisCPUSeconds(connection) - cpuBefore) * 1e6 / confirmations)
                    aof[index].append(Double(ServerUnderTest.redisAOF(connection).bytes - aofBefore) / confirmations)
                    counts[index] = (Double(commands) / confirmations, Double(arguments) / confirmations)
                }
            }
            let base = Bench.median(cpu[0])
            for (index, shape) in Self.shapes.enumerated() {
                let figure = Bench.median(cpu[index])
                print(
                    String(
                        format:
                            "writes: %@ Redis %5.1f µs per confirmation (%+4.0f%%; rounds %@), AOF %4.0f bytes, %4.1f commands and %5.1f arguments per confirmation",
                        shape.name.padding(toLength: 34, withPad: " ", startingAt: 0), figure,
                        (figure / base - 1) * 100,
                        cpu[index].map { String(format: "%.1f", $0) }.joined(separator: "/"), Bench.median(aof[index]),
                        counts[index].commands, counts[index].arguments))
            }
            print(
                "writes: every shape also writes, per commit, one ledger stream entry carrying the batch's raw EA messages, the statistics, balances and slot hashes, the recent-trade lists and the checkpoint, and publishes the events"
            )
        }
    }
}

extension Bench.Writes {
    /// The hash tag of a ticket's shard (a thousand tickets each).
    static func tag(_ ticket: Int) -> String { "{t\(ticket / 1_000 % 16)}" }

    /// One commit in `shape`: the fills of the trades `filling` and the closes of the trades `closing` (filled one
    /// commit earlier, as when fills and closes arrive apart), what the trade engine writes for each (values as the
    /// bench's EA sends them), then what it writes once per commit.
    static func commit(shape: Shape, filling: Range<Int>, closing: Range<Int>) -> [[String]] {
        let shard = tag(filling.lowerBound)
        var commands: [[String]] = []
        var ledger = ["XADD", "stream:confirmations:\(shard)", "*"]
        var events: [String] = []
        // With `setsPerCommit`: each set's members gathered, one SADD or SREM (ZREM) per key and commit.
        var adds: [(String, [String])] = []
        var removes: [(String, [String])] = []
        func change(_ command: String, _ key: String, _ member: String) {
            guard !shape.setsPerCommit else {
                if command == "SADD" {
                    if let at = adds.firstIndex(where: { $0.0 == key }) {
                        adds[at].1.append(member)
                    } else {
                        adds.append((key, [member]))
                    }
                } else {
                    if let at = removes.firstIndex(where: { $0.0 == key }) {
                        removes[at].1.append(member)
                    } else {
                        removes.append((key, [member]))
                    }
                }
                return
            }
            commands.append([command, key, member])
        }
        func names(_ ticket: Int) -> (t: String, user: String, fire: String, position: String, shard: String) {
            let t = String(ticket)
            return (
                t, "user_bench_\(ticket % 100)", "F-20261205-03-\(String(format: "%06d", ticket % 1_000_000))",
                "position:\(tag(ticket)):\(t)", tag(ticket)
            )
        }
        func confirmation(_ kind: String, _ ticket: Int) {
            let (t, user, fire, _, _) = names(ticket)
            ledger += ["m", message(kind: kind, fire: fire, user: user, ticket: t)]
            events.append(
                #"{"event":"\#(kind == "fire" ? "fire.filled" : "position.closed")","fire_id":"\#(fire)","ticket":"\#(t)","user_uuid":"\#(user)","symbol":"EURUSD","lot":"0.1","price":"1.085","profit":"11.00"}"#
            )
        }
        for ticket in filling {
            let (t, user, fire, position, tag) = names(ticket)
            confirmation("fire", ticket)
            if shape.fireHash {
                commands.append([
                    "HSET", "fire:\(tag):\(fire)", "state", "filled", "confirmed_at", "1796599089.398496", "ea_message",
                    "Trade executed successfully via DEALER", "account", "80000", "late", "0", "ticket", t,
                    "fill_price", "1.085", "fill_lot", "0.1",
                ])
                change("ZREM", "fires:inflight:\(tag)", fire)
            }
            if shape.fieldPerValue {
                commands.append([
                    "HSET", position, "ticket", t, "fire_id", fire, "signal_id", "SIG_BENCH_\(ticket % 100)",
                    "user_uuid",
                    user, "account", "80000", "symbol", "EURUSD", "direction", "BUY", "lot", "0.1", "open_price",
                    "1.085", "sl", "1.08", "tp", "1.09", "open_time", "1796599089.398496", "tick_size", "0.00001",
                    "tick_value", "1", "status", "open",
                ])
            } else {
                commands.append([
                    "HSET", position, "ticket", t, "status", "open", "open",
                    "\(fire)|SIG_BENCH_\(ticket % 100)|\(user)|80000|EURUSD|BUY|0.1|1.085|1.08|1.09|1796599089.398496|0.00001|1",
                ])
            }
            if shape.shardOpenSet { change("SADD", "open_positions:\(tag)", t) }
            change("SADD", "user_positions:\(tag):\(user)", t)
        }
        for ticket in closing {
            let (t, user, _, position, tag) = names(ticket)
            confirmation("close_ticket", ticket)
            if shape.fieldPerValue {
                commands.append([
                    "HSET", position, "status", "closed", "close_price", "1.0861", "profit", "11.00", "closed_at",
                    "1796599090.1", "close_time", "1796599090.1", "duration", "1", "result", "win",
                    "close_price_source", "market", "close_reason", "requested", "profit_source", "balance",
                ])
            } else {
                commands.append([
                    "HSET", position, "status", "closed", "close",
                    "1.0861|11.00|1796599090.1|1|win|market|requested|balance",
                ])
            }
            if shape.shardOpenSet { change("SREM", "open_positions:\(tag)", t) }
            change("SREM", "user_positions:\(tag):\(user)", t)
            if shape.tradeCopy {
                commands.append(["COPY", position, "trade:\(tag):\(t)", "REPLACE"])
                commands.append(["PEXPIREAT", "trade:\(tag):\(t)", "1799191090000"])
            }
        }
        for (key, members) in adds { commands.append(["SADD", key] + members) }
        for (key, members) in removes { commands.append([key.hasPrefix("fires:") ? "ZREM" : "SREM", key] + members) }
        // Once per commit.
        let closed = closing.map(String.init)
        commands.insert(ledger, at: 0)
        commands.insert(["HSET", "confirmations:writers:\(shard)", "gateway-1", String(filling.upperBound)], at: 1)
        for list in ["trades:recent:\(shard)", "trades:\(shard):EURUSD", "trades:day:\(shard):2026-12-06"]
        where !closed.isEmpty {
            commands.append(["LPUSH", list] + closed)
            commands.append(["LTRIM", list, "0", "999"])
        }
        let statistics = [
            "total_trades", "20000", "wins", "12000", "losses", "8000", "win_rate", "60", "total_profit", "22000.00",
            "gross_profit", "132000.00", "gross_loss", "110000.00", "profit_factor", "1.2", "largest_win", "11.00",
            "largest_loss", "-13.75", "current_streak", "3", "best_streak", "9", "worst_streak", "-6",
        ]
        for key in [
            "global_trade_stats:\(shard)", "symbol_stats:\(shard):EURUSD", "account_stats_trades:\(shard):80000",
        ] {
            commands.append(["HSET", key] + statistics)
        }
        commands.append(["HSET", "account_balance:\(shard)", "80000", "1002200|2000"])
        commands.append(["HSET", "slots:\(shard)", "user_bench_0", "0"])
        commands.append(["PUBLISH", "bitten:events", events.joined(separator: "\n")])
        commands.append(["HSET", "shard:\(shard)", "sequence", String(filling.upperBound), "checkpoint", "0-1"])
        return commands
    }

    /// A confirmation as the ledger keeps it: the writer's fields and the EA's raw message (~520 bytes), as v2.05
    /// sends it: a fill's `confirmation` with its price, a close's `close_confirmation` with `close_price` 0 and the
    /// balance after the close (`../shared/fixtures/ea/close_confirmation_v205.json`).
    static func message(kind: String, fire: String, user: String, ticket: String) -> String {
        let payload =
            kind == "fire"
            ? #"{"type":"confirmation","command_type":"fire","fire_id":"\#(fire)","node_id":"NODE_1_1","user_uuid":"\#(user)","status":"success","ticket":\#(ticket),"price":1.08500,"lot":0.10,"message":"Trade executed successfully via DEALER","account":80000,"currency":"USD","balance":10000.00,"equity":10000.00,"free_margin":10000.00,"margin_level":0.00,"timestamp":"2026.11.24 14:06:02"}"#
            : #"{"type":"close_confirmation","command_type":"\#(kind)","node_id":"NODE_1_1","user_uuid":"\#(user)","status":"success","ticket":\#(ticket),"close_price":0.00000,"lot":0.10,"message":"Position closed successfully","account":80000,"currency":"USD","balance":10011.00,"equity":10011.00,"free_margin":10011.00,"margin_level":0.00,"timestamp":"2026.11.24 15:12:44"}"#
        let fields = [
            ("type", kind == "fire" ? "confirmation" : "close_confirmation"), ("user_uuid", user),
            ("received_at", "1796599089.398496"),
            ("entry_id", "gateway-1:1796599089398495"), ("payload", payload),
        ]
        return fields.map { "\($0.0.utf8.count):\($0.0)\($0.1.utf8.count):\($0.1)" }.joined()
    }
}
