import BittenTestSupport
import Foundation
import Logging
import Redis
import Synchronization
import Testing

@testable import BittenServices

/// The concentration holds gathered per key, against real Redis: many fires holding at once on one key get exactly
/// as many holds as the limit allows, in far fewer `hold_lots` calls than fires; each answer reaches its own fire.
@Suite("Concentration holds gathered per key (real Redis)")
struct LotHoldsTests {
    /// A redis-server, a client and a probe connection to it.
    struct Fixture {
        let server: RedisServerProcess
        let redis: RedisClient
        let probe: RedisConnection

        init() throws {
            server = try RedisServerProcess()
            let url = try RedisURL(parsing: server.url)
            redis = RedisClient(url: url, poolSize: 2, logger: Logger(label: "bitten.test"))
            probe = try RedisConnection(url: url)
        }

        func stop() {
            redis.shutdown()
            server.stop()
        }
    }

    @Test func concurrentHoldsOnOneKeyAreGatheredAndStopExactlyAtTheLimit() async throws {
        let fixture = try Fixture()
        defer { fixture.stop() }
        let holds = LotHolds(redis: fixture.redis)
        let calls = try await holdConcurrently(holds, probe: fixture.probe, command: "evalsha")
        #expect(calls < 200, "\(calls) hold_lots calls for 400 fires")
    }

    /// Holds riding a running trade engine's commit rounds (as the fire desk's do) give the same answers: exactly as
    /// many as the limit allows, each its own, in fewer calls than fires, and with no call of their own (they go as EVAL
    /// in the rounds).
    @Test func holdsRidingTheCommitRoundsStopExactlyAtTheLimit() async throws {
        let fixture = try Fixture()
        defer { fixture.stop() }
        var settings = TradeEngine.Settings()
        settings.shards = 2
        let engine = TradeEngine(
            redis: fixture.redis, settings: settings, board: ServiceBoard(), logger: Logger(label: "bitten.test"))
        let running = Task { try await engine.run() }
        defer { running.cancel() }
        let holds = LotHolds(redis: fixture.redis, riding: engine)
        let calls = try await holdConcurrently(holds, probe: fixture.probe, command: "eval")
        // EVAL (with the source) is how riders go; a hold's own call would be an EVALSHA.
        #expect(calls >= 1 && calls < 200, "\(calls) hold_lots calls for 400 fires")
        running.cancel()
        _ = await running.result
    }

    /// 400 fires hold 0.1 lots each at once on one key limited to 10; checks the answers and the hash, and returns how
    /// many calls of `command` Redis ran.
    func holdConcurrently(_ holds: LotHolds, probe: RedisConnection, command: String) async throws -> Int {
        let key = "concentration:{lots}:symbol:EURUSD"
        _ = try probe.command(["CONFIG", "RESETSTAT"])
        let fires = 400
        let answers = await withTaskGroup(of: (Int, Bool).self) { group in
            for i in 0..<fires {
                group.addTask {
                    let reply = await holds.submit(
                        field: "h:F-\(i)", lots: 0.1, on: [LotHolds.Limit(key: key, limit: 10, ttl: 0)]
                    ).answer
                    guard case .success(let answer) = reply else { return (i, false) }
                    return (i, answer.held)
                }
            }
            var answers: [Int: Bool] = [:]
            for await (i, held) in group { answers[i] = held }
            return answers
        }
        let held = answers.filter(\.value).map(\.key)
        #expect(answers.count == fires)
        #expect(held.count == 100, "10 lots of 0.1: exactly 100 holds")
        #expect(Double(try probe.command(["HGET", key, "total"]).string ?? "") == 10)
        // Each fire's answer is its own: the fires told "held" are exactly the fields in the hash.
        let fields = Set(
            (try probe.command(["HKEYS", key]).array ?? []).compactMap(\.string).filter { $0.hasPrefix("h:") })
        #expect(fields == Set(held.map { "h:F-\($0)" }))
        let stats = try probe.command(["INFO", "commandstats"]).string ?? ""
        let line = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_\(command):") } ?? ""
        return Int(line.split(separator: ",").first?.split(separator: "=").last ?? "") ?? fires
    }
}
