import BittenTestSupport
import Foundation
import Logging
import Redis
import Synchronization
import Testing

@testable import BittenServices

/// The concentration holds riding a running trade engine's commit rounds (as the fire desk's do), against real Redis:
/// many fires holding at once on one key get exactly as many holds as the limit allows, in far fewer `hold_lots` calls
/// than fires, with no call of their own (they go as EVAL in the rounds); each answer reaches its own fire.
@Suite("Concentration holds gathered per key (real Redis)")
struct LotHoldsTests {
    @Test func holdsRidingTheCommitRoundsAreGatheredAndStopExactlyAtTheLimit() async throws {
        let server = try RedisServerProcess()
        defer { server.stop() }
        let url = try RedisURL(parsing: server.url)
        let redis = RedisClient(url: url, poolSize: 2, logger: Logger(label: "bitten.test"))
        defer { redis.shutdown() }
        let probe = try RedisConnection(url: url)
        var settings = TradeEngine.Settings()
        settings.shards = 2
        let engine = TradeEngine(
            redis: redis, settings: settings, board: ServiceBoard(), logger: Logger(label: "bitten.test"))
        let running = Task { try await engine.run() }
        defer { running.cancel() }
        let holds = LotHolds(riding: engine)
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
        // EVAL (with the source) is how riders go; without gathering there would be one call per fire.
        let stats = try probe.command(["INFO", "commandstats"]).string ?? ""
        let line = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_eval:") } ?? ""
        let calls = Int(line.split(separator: ",").first?.split(separator: "=").last ?? "") ?? fires
        #expect(calls >= 1 && calls < fires / 2, "\(calls) hold_lots calls for \(fires) fires")
        running.cancel()
        _ = await running.result
    }
}
