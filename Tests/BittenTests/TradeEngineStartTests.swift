import BittenCore
import BittenServices
import BittenTestSupport
import Foundation
import Logging
import Redis
import Testing

/// The first moments of a trade engine on a real redis-server: requests that come before it has taken its
/// shards.
@Suite("Trade engine start")
struct TradeEngineStartTests {
    /// A user saved before the engine has taken the user's shard waits for it and is stored (it was refused
    /// with "trade shard N is not available here: not loaded" when the API answered before the shards were
    /// loaded).
    @Test func aRequestBeforeTheShardsAreTakenWaitsForThem() async throws {
        let server = try RedisServerProcess()
        defer { server.stop() }
        let client = RedisClient(
            url: try RedisURL(parsing: server.url), poolSize: 2, logger: Logger(label: "bitten.test"))
        defer { client.shutdown() }
        var settings = TradeEngine.Settings()
        settings.shards = 4
        let engine = TradeEngine(
            redis: client, settings: settings, board: ServiceBoard(), logger: Logger(label: "bitten.test"))
        let store = TradeStore(redis: client, engine: engine)
        let uuid = "user_start_0001"
        #expect(!engine.owns(uuid))
        let saving = Task {
            try await store.save(UserRecord(uuid: uuid, tier: .commander, displayName: uuid, createdAt: 1))
        }
        // The engine starts after the request came in.
        try await Task.sleep(for: .milliseconds(300))
        let running = Task { try await engine.run() }
        try await saving.value
        #expect(engine.owns(uuid))
        #expect(try await store.user(uuid)?.tier == .commander)
        running.cancel()
        _ = await running.result
    }
}
