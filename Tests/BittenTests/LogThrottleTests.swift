import BittenServices
import BittenTestSupport
import Foundation
import Logging
import Redis
import Synchronization
import Testing

/// The log throttle: at most `limit` lines per window, each line let through after a quiet spell saying how many were
/// held back.
@Suite("Log throttle")
struct LogThrottleTests {
    /// Keeps what is logged.
    struct Capture: LogHandler {
        final class Lines: Sendable {
            let value = Mutex<[(Logger.Level, String, Logger.Metadata)]>([])
        }
        let lines: Lines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            lines.value.withLock { $0.append((event.level, event.message.description, event.metadata ?? [:])) }
        }
    }

    @Test func linesPastTheLimitAreHeldBackAndCountedInTheNextOneLetThrough() {
        let lines = Capture.Lines()
        let logger = Logger(label: "bitten.test") { _ in Capture(lines: lines) }
        let throttle = LogThrottle(limit: 2, window: 60)
        for i in 0..<5 {
            throttle.log(logger, .warning, "bad input \(i)", metadata: ["bitten.reason": "x"], now: 1_000)
        }
        throttle.log(logger, .error, "after the window", now: 1_061)
        let logged = lines.value.withLock { $0 }
        #expect(logged.map(\.1) == ["bad input 0", "bad input 1", "after the window"])
        #expect(logged.map(\.0) == [.warning, .warning, .error])
        #expect(logged.map { $0.2["bitten.log.suppressed"]?.description } == ["0", "0", "3"])
        #expect(logged[0].2["bitten.reason"]?.description == "x")
    }

    /// A flood of ledger entries the trade engine cannot apply (here 80 unreadable ones) is counted and logged 50
    /// times a minute at most, not once each: every one is still applied past (the checkpoint moves over them).
    @Test func aFloodOfConfirmationsNotAppliedIsLoggedWithinTheLimit() async throws {
        let lines = Capture.Lines()
        let ledger = try await LedgerHarness.start(
            shards: 1, logger: Logger(label: "bitten.test") { _ in Capture(lines: lines) })
        defer { ledger.server.stop() }
        var last = ""
        for _ in 0..<80 {
            last = try ledger.redis.xadd(ShardKeys(shard: 0).confirmations, fields: [("m", "unreadable")])
        }
        ledger.engine.wake()
        #expect(try await eventually(.seconds(10)) { ledger.engine.committedCheckpoint(0) == last })
        let notApplied = lines.value.withLock { $0.filter { $0.1 == "confirmation not applied" } }
        #expect(notApplied.count == 50)
        #expect(notApplied.allSatisfy { $0.2["bitten.outcome"]?.description == "undecodable" })
        await ledger.stop()
    }
}
