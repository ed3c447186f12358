import BittenCore
import BittenTestSupport
import Foundation
import Logging
import Redis
import Synchronization
import Testing

@testable import BittenServices

/// The flight recorder against real Redis: steps written in one pipeline and read back in order, each trace bounded
/// and kept 30 days, a signal listing its fires, and a buffer that keeps what Redis could not take (up to its bound).
@Suite("Flight recorder (real Redis)")
struct FlightRecorderTests {
    @Test func stepsAreWrittenBoundedKeptAndReadBack() async throws {
        let server = try RedisServerProcess()
        defer { server.stop() }
        let redis = RedisClient(url: try RedisURL(parsing: server.url), poolSize: 1, logger: Logger(label: "t"))
        defer { redis.shutdown() }
        let recorder = FlightRecorder(redis: redis, board: ServiceBoard(), logger: Logger(label: "t"))
        recorder.signal("SIG_1", "intake", at: 10, ["raw": #"{"signal_id":"SIG_1"}"#, "citadel_score": "7.5"])
        recorder.signal("SIG_1", "refused", at: 11, ["user_uuid": "nobody", "code": "user_not_found"])
        recorder.fire("F-1", signalID: "SIG_1", "checks", at: 12, ["lot": "0.5", "balance": "10000"])
        recorder.fire("F-1", "sent", at: 13, ["command": #"{"type":"fire"}"#])
        recorder.fire("F-2", signalID: "SIG_1", "checks", at: 14, [:])
        await recorder.flush()
        let reader = TraceReader(redis: redis)
        let fire = try await reader.fire("F-1")
        #expect(fire.map(\.step) == ["checks", "sent"] && fire.map(\.at) == [12, 13])
        #expect(fire.first?.data["lot"] == "0.5" && fire.last?.data["command"] == #"{"type":"fire"}"#)
        let signal = try await reader.signal("SIG_1", limit: 1, offset: 1)
        #expect(
            signal.steps.map(\.step) == ["intake", "refused"] && signal.steps.first?.data["citadel_score"] == "7.5")
        #expect(signal.fires == ["F-2"] && signal.totalFires == 2)
        for key in ["trace:fire:F-1", "trace:signal:SIG_1", "trace:signal:SIG_1:fires"] {
            let ttl = try await redis.command(["TTL", key]).int ?? -1
            #expect(ttl > 29 * 86_400 && ttl <= 30 * 86_400, "\(key): \(ttl)")
        }
        // A fire's checks and its command, recorded in one flush, share one stream entry.
        #expect(try await redis.command(["XLEN", "trace:fire:F-1"]).int == 1)
        // Bounded: a fire's stream keeps about maxFireSteps entries (Redis trims whole nodes: "~"), and the reader
        // gives its last maxFireSteps steps.
        let many = FlightRecorder.maxFireSteps * FlightRecorder.stepsPerEntry * 3
        for i in 0..<many { recorder.fire("F-3", "answer", at: Double(i), [:]) }
        await recorder.flush()
        let kept = try await reader.fire("F-3")
        #expect(kept.count == FlightRecorder.maxFireSteps)
        #expect(kept.last?.at == Double(many - 1) && kept.first?.at == Double(many - FlightRecorder.maxFireSteps))
        let length = try await redis.command(["XLEN", "trace:fire:F-3"]).int ?? 0
        #expect(length >= FlightRecorder.maxFireSteps && length < FlightRecorder.maxFireSteps * 2, "\(length)")
    }

    @Test func whatRedisCouldNotTakeIsKeptUpToTheBound() async throws {
        let server = try RedisServerProcess()
        let redis = RedisClient(url: try RedisURL(parsing: server.url), poolSize: 1, logger: Logger(label: "t"))
        defer { redis.shutdown() }
        let recorder = FlightRecorder(
            redis: redis, board: ServiceBoard(), logger: Logger(label: "t"), maxBuffered: 3)
        _ = try await redis.command(["PING"])
        server.stop()
        for i in 0..<5 { recorder.fire("F-9", "step\(i)", at: Double(i), [:]) }
        await recorder.flush()
        let kept = recorder.buffer.withLock { entries in
            entries.map { entry -> String in
                if case .step(let step) = entry { return step.step }
                return "later"
            }
        }
        #expect(kept == ["step2", "step3", "step4"], "the oldest dropped")
    }

    /// Steps recorded as their inputs (`later`) are made at the flush, in order with the others, and a flush
    /// larger than one pipeline's chunk writes every step.
    @Test func stepsMadeAtTheFlushAreWrittenInOrderAcrossChunks() async throws {
        let server = try RedisServerProcess()
        defer { server.stop() }
        let redis = RedisClient(url: try RedisURL(parsing: server.url), poolSize: 1, logger: Logger(label: "t"))
        defer { redis.shutdown() }
        let recorder = FlightRecorder(redis: redis, board: ServiceBoard(), logger: Logger(label: "t"))
        let made = Mutex(0)
        recorder.fire("F-L", signalID: "SIG_L", "checks", at: 1, ["lot": "0.1"])
        recorder.later {
            made.withLock { $0 += 1 }
            return (2...(FlightRecorder.chunk * 2 + 1)).map {
                FlightRecorder.Step(
                    signalID: nil, fireID: "F-L", step: "answer", at: Double($0), fields: ["n": "\($0)"])
            }
        }
        recorder.fire("F-L", "closed", at: Double(FlightRecorder.chunk * 2 + 2), [:])
        #expect(made.withLock { $0 } == 0, "nothing is made before the flush")
        await recorder.flush()
        #expect(made.withLock { $0 } == 1)
        let steps = try await TraceReader(redis: redis).fire("F-L")
        #expect(steps.count == FlightRecorder.chunk * 2 + 2)
        #expect(steps.map(\.at) == (1...(FlightRecorder.chunk * 2 + 2)).map(Double.init))
        #expect(steps.first?.step == "checks" && steps.last?.step == "closed" && steps[1].data["n"] == "2")
        #expect(try await TraceReader(redis: redis).signal("SIG_L", limit: 10, offset: 0).fires == ["F-L"])
    }
}
