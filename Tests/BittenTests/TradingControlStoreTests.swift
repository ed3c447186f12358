import BittenCore
import BittenTestSupport
import Foundation
import Logging
import Redis
import Synchronization
import Testing

@testable import BittenServices

/// The system's trading state in real Redis: versions, acknowledgements, the close-all claim, and the switch that
/// enforces it in a trade process (read, gate, drain, acknowledge, fail-safe when it cannot read).
@Suite("Trading state store and switch (real Redis)")
struct TradingControlStoreTests {
    final class Clock: Sendable {
        let time = Mutex(1_800_000_000.0)
        func now() -> Double { time.withLock { $0 } }
        func advance(_ seconds: Double) { time.withLock { $0 += seconds } }
    }

    @Test func setGivesEachChangeTheNextVersionAndReadsItBack() async throws {
        let server = try RedisServerProcess()
        defer { server.stop() }
        let redis = RedisClient(url: try RedisURL(parsing: server.url), poolSize: 1, logger: Logger(label: "t"))
        defer { redis.shutdown() }
        let store = TradingControlStore(redis: redis)
        #expect(try await store.read() == .active)
        let halted = try await store.set(
            TradingControl(state: .halted, reason: "why", by: "who", at: 5, closeAll: true))
        #expect(halted.version == 1)
        #expect(try await store.read() == halted)
        let resumed = try await store.set(TradingControl(state: .active, by: "who", at: 6))
        let read = try await store.read()
        #expect(resumed.version == 2 && read.closeAll == false)
        // The script, directly: the version comes back and the fields are set.
        let reply = try await redis.evaluate(
            LuaScripts.setTradingControl, keys: [RedisKeys.tradingControl], args: ["state", "close_only"])
        #expect(reply.int == 3)
        #expect(try await redis.command(["HGET", RedisKeys.tradingControl, "state"]).string == "close_only")
        // Something else in the key is refused as a state, not taken for one.
        _ = try await redis.command(["HSET", RedisKeys.tradingControl, "state", "sideways"])
        await #expect(throws: RedisError.self) { try await store.read() }
    }

    @Test func acknowledgementsCountOnlyLiveProcessesAndCloseAllIsClaimedOnce() async throws {
        let server = try RedisServerProcess()
        defer { server.stop() }
        let redis = RedisClient(url: try RedisURL(parsing: server.url), poolSize: 1, logger: Logger(label: "t"))
        defer { redis.shutdown() }
        let clock = Clock()
        let store = TradingControlStore(redis: redis, now: clock.now)
        try await store.acknowledge(process: "a", version: 3)
        clock.advance(10)
        try await store.acknowledge(process: "b", version: 2)
        #expect(try await store.acknowledgements().map(\.process) == ["b"], "a stopped acknowledging 10 s ago")
        let (acknowledged, waiting) = await store.awaitAcknowledgements(of: 3, timeout: 0)
        #expect(acknowledged.isEmpty && waiting == ["b"])
        try await store.withdraw(process: "b")
        #expect(try await store.acknowledgements().isEmpty)
        #expect(try await store.claimCloseAll(version: 4, shard: 2, process: "a"))
        #expect(!(try await store.claimCloseAll(version: 4, shard: 2, process: "b")))
        #expect(try await store.claimCloseAll(version: 4, shard: 3, process: "b"))
    }

    @Test func theSwitchRefusesUntilReadThenGatesDrainsAndAcknowledges() async throws {
        let server = try RedisServerProcess()
        defer { server.stop() }
        let redis = RedisClient(url: try RedisURL(parsing: server.url), poolSize: 1, logger: Logger(label: "t"))
        defer { redis.shutdown() }
        let clock = Clock()
        let store = TradingControlStore(redis: redis, now: clock.now)
        let gate = TradingSwitch(
            store: store, instance: "test", board: ServiceBoard(), logger: Logger(label: "t"), staleAfter: 3,
            now: clock.now)
        // Never read: fires refused (a halt set meanwhile must not be missed), closes allowed.
        #expect(gate.enter(fire: true)?.code == .storeUnavailable)
        #expect(gate.refusal(fire: false, at: clock.now()) == nil)
        await gate.poll()
        #expect(gate.enter(fire: true) == nil)
        gate.leave()
        #expect(try await store.acknowledgements().map(\.version) == [0])

        // A send in flight holds the acknowledgement of a halt until it is over.
        #expect(gate.enter(fire: true) == nil)
        let halted = try await store.set(TradingControl(state: .halted, reason: "test", by: "me", at: clock.now()))
        let polling = Task { await gate.poll() }
        // Taken at once, before the drain (however busy the machine is).
        for _ in 0..<500 where gate.current?.state != .halted { try await Task.sleep(for: .milliseconds(10)) }
        #expect(gate.enter(fire: true)?.code == .tradingHalted, "taken at once, before the drain")
        #expect(try await store.acknowledgements().first?.version == 0, "not acknowledged while a send is in flight")
        gate.leave()
        await polling.value
        #expect(try await store.acknowledgements().first?.version == halted.version)
        #expect(gate.enter(fire: false)?.code == .tradingHalted)
        #expect(gate.enter(fire: false, forced: true) == nil, "an operator's close-all passes")
        gate.leave()

        // Close-only: closes go, fires do not.
        _ = try await store.set(TradingControl(state: .closeOnly, at: clock.now()))
        await gate.poll()
        #expect(gate.enter(fire: true)?.code == .closeOnly)
        #expect(gate.enter(fire: false) == nil)
        gate.leave()

        // Not read for longer than staleAfter (Redis away): fires refused again.
        _ = try await store.set(TradingControl(state: .active, at: clock.now()))
        await gate.poll()
        clock.advance(4)
        #expect(gate.enter(fire: true)?.code == .storeUnavailable)
        await gate.poll()
        #expect(gate.enter(fire: true) == nil)
        gate.leave()
    }
}
