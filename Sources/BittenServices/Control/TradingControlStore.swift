import BittenCore
import Foundation
import Redis

/// The system's trading state in Redis (`bitten:control`), and the acknowledgements of the processes that
/// enforce it (`bitten:control:acks`: per process, the version it applies and when it last said so). Any
/// process may change the state (the HTTP API, `bitten halt`); every trade process reads it
/// (`TradingSwitch`) and acknowledges it.
public struct TradingControlStore: Sendable {
    /// The Redis holding the state.
    public let redis: RedisClient
    let now: @Sendable () -> Double

    /// The store over `redis`.
    public init(redis: RedisClient, now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.redis = redis
        self.now = now
    }

    /// A process's acknowledgement: the version it enforces, and when it last said so.
    public struct Acknowledgement: Sendable, Equatable, Codable {
        /// The process (`instance/host/pid`).
        public var process: String
        /// The version of the state it enforces.
        public var version: Int
        /// When it last acknowledged (epoch seconds).
        public var at: Double
    }

    /// Seconds after which a process that stopped acknowledging is no longer counted as running.
    public static let liveWindow: Double = 5

    /// The system's state (`active`, version 0, when never set).
    public func read() async throws -> TradingControl {
        let hash = try await redis.command(["HGETALL", RedisKeys.tradingControl]).hash ?? [:]
        guard let control = TradingControl(systemHash: hash) else {
            throw RedisError(.unexpectedReply, "\(RedisKeys.tradingControl) is not a trading state: \(hash)")
        }
        return control
    }

    /// Sets the system's state; returns it with its new version.
    public func set(_ control: TradingControl) async throws -> TradingControl {
        let reply = try await redis.evaluate(
            LuaScripts.setTradingControl, keys: [RedisKeys.tradingControl], args: control.systemFields)
        guard let version = reply.int else {
            throw RedisError(.unexpectedReply, "setting the trading state answered \(reply)")
        }
        var stored = control
        stored.version = version
        return stored
    }

    /// The acknowledgements of processes heard from within `liveWindow`, by process.
    public func acknowledgements() async throws -> [Acknowledgement] {
        let hash = try await redis.command(["HGETALL", RedisKeys.tradingControlAcks]).hash ?? [:]
        let time = now()
        return hash.compactMap { process, value in
            let parts = value.split(separator: "|")
            guard parts.count == 2, let version = Int(parts[0]), let at = Double(parts[1]),
                time - at <= Self.liveWindow
            else { return nil }
            return Acknowledgement(process: process, version: version, at: at)
        }.sorted { $0.process < $1.process }
    }

    /// Waits until every running trade process enforces `version` (or `timeout` passes): the processes that
    /// do, and those that did not within the time.
    public func awaitAcknowledgements(of version: Int, timeout: Double = 3) async -> (
        acknowledged: [String], waiting: [String]
    ) {
        let deadline = now() + timeout
        var last: [Acknowledgement] = []
        while true {
            if let read = try? await acknowledgements() { last = read }
            let waiting = last.filter { $0.version < version }.map(\.process)
            if waiting.isEmpty || now() >= deadline {
                return (last.filter { $0.version >= version }.map(\.process), waiting)
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Writes this process's acknowledgement.
    func acknowledge(process: String, version: Int) async throws {
        _ = try await redis.command([
            "HSET", RedisKeys.tradingControlAcks, process,
            "\(version)|\(PlainDecimal.format(now(), maxFractionDigits: 3) ?? "0")",
        ])
    }

    /// Removes this process's acknowledgement (it stops).
    func withdraw(process: String) async throws {
        _ = try await redis.command(["HDEL", RedisKeys.tradingControlAcks, process])
    }

    /// Claims the close-all of `version` for one shard: true once, for the first process that asks.
    func claimCloseAll(version: Int, shard: Int, process: String) async throws -> Bool {
        let reply = try await redis.command([
            "SET", RedisKeys.tradingCloseAll(version: version, shard: shard), process, "NX", "EX", "604800",
        ])
        return reply.string == "OK"
    }
}
