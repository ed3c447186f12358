import BittenCore
import Foundation
import Logging
import ServiceLifecycle
import ZeroMQ

/// Why a signal was not taken.
public struct SignalRejection: Error, Sendable, CustomStringConvertible {
    /// The kinds of refusal.
    public enum Code: String, Sendable {
        case invalid, duplicate, expired
        case storeUnavailable = "store_unavailable"
    }

    /// Why, as a stable code.
    public let code: Code
    /// What happened, for a person.
    public let message: String
    /// The decode error, for `invalid`.
    public let wireError: WireError?

    /// A one-line description.
    public var description: String { "\(code.rawValue): \(message)" }
}

/// Signal intake: signals from a signal engine (ZMQ PULL on `BITTEN_SIGNAL_IN_PORT`, and
/// `POST /signals`) are validated, scored by CITADEL, stored as `signal:{id}` until they expire,
/// and published shielded on 5557 as `ELITE_GUARD_SIGNAL {json}`.
public final class SignalIntake: Service, Sendable {
    /// The name on the services board, in the CLI and in `logs/`.
    public static let name = "signal_intake"

    private let input: LoopSocket?
    private let publisher: LoopSocket?
    private let store: TradeStore
    private let scorer: any ProtectionScorer
    private let defaultTTL: Double
    private let board: ServiceBoard
    private let metrics: WireMetrics
    private let logger: Logger
    private let throttle = LogThrottle()
    private let now: @Sendable () -> Double
    private let recorder: FlightRecorder?

    /// Signal intake on `input`, publishing shielded signals on `publisher`.
    public init(
        input: LoopSocket?, publisher: LoopSocket?, store: TradeStore, scorer: any ProtectionScorer,
        defaultTTL: Double = 7200, board: ServiceBoard, port: Int, logger: Logger, recorder: FlightRecorder? = nil,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.recorder = recorder
        self.input = input
        self.publisher = publisher
        self.store = store
        self.scorer = scorer
        self.defaultTTL = defaultTTL
        self.board = board
        self.metrics = WireMetrics(port: port)
        self.logger = logger
        self.now = now
        board.register(Self.name)
    }

    /// Validates, scores, stores and publishes one signal.
    public func submit(_ bytes: [UInt8]) async throws(SignalRejection) -> SignalRecord {
        let at = now()
        let signal: Signal
        do {
            signal = try Signal.decode(bytes, now: at, defaultTTL: defaultTTL)
        } catch {
            throw SignalRejection(code: .invalid, message: "signal rejected: \(error)", wireError: error)
        }
        guard signal.expiresAt > at else {
            throw SignalRejection(
                code: .expired, message: "signal \(signal.signalID) expired at \(Int(signal.expiresAt))",
                wireError: nil)
        }
        let assessment = scorer.assess(signal, at: at)
        let record = SignalRecord(signal, score: assessment, receivedAt: at)
        let created: Bool
        do {
            created = try await store.save(record, now: at)
        } catch {
            throw SignalRejection(
                code: .storeUnavailable, message: "signal store unavailable: \(error)", wireError: nil)
        }
        guard created else {
            throw SignalRejection(code: .duplicate, message: "signal \(signal.signalID) exists already", wireError: nil)
        }
        if let publisher {
            let json = signal.json(adding: [
                "citadel_shielded": .bool(true), "citadel_score": .number(assessment.score, isInteger: false),
                "citadel_level": .string(assessment.level),
                "citadel_multiplier": .number(assessment.multiplier, isInteger: false),
                "citadel_insights": .array(assessment.insights.map { .string($0) }),
            ])
            publisher.post([Message(strings: [Signal.wirePrefix + json])])
        }
        recorder?.signal(
            signal.signalID, "intake", at: at,
            [
                "raw": String(decoding: bytes.prefix(8_192), as: UTF8.self), "symbol": signal.symbol,
                "direction": record.direction, "entry": TradeStore.number(signal.entry),
                "sl": TradeStore.number(signal.stopLoss), "tp": TradeStore.number(signal.takeProfit),
                "expires_at": TradeStore.number(signal.expiresAt),
                "citadel_score": TradeStore.number(assessment.score), "citadel_level": assessment.level,
                "citadel_multiplier": TradeStore.number(assessment.multiplier),
                "citadel_insights": assessment.insights.joined(separator: " | "),
            ])
        board.count(Self.name, in: 1, out: 1)
        logger.info(
            "signal accepted",
            metadata: [
                "bitten.signal.id": "\(signal.signalID)", "bitten.symbol": "\(signal.symbol)",
                "bitten.signal.score": "\(assessment.score)",
            ])
        return record
    }

    /// Runs until the group shuts down.
    public func run() async throws {
        board.set(Self.name, .running)
        if let input {
            await withGracefulShutdownHandler {
                for await batch in input.messages.cancelOnGracefulShutdown() {
                    metrics.receivedMessages(batch.count)
                    for message in batch {
                        do throws(SignalRejection) {
                            guard message.frames.count == 1 else {
                                throw SignalRejection(
                                    code: .invalid, message: "expected one frame, got \(message.frames.count)",
                                    wireError: WireError(.malformed, "expected one frame"))
                            }
                            _ = try await submit(message.frames[0])
                        } catch {
                            board.count(Self.name, errors: 1)
                            if let wire = error.wireError {
                                metrics.rejected(wire)
                            } else {
                                metrics.rejected(reason: error.code.rawValue)
                            }
                            throttle.log(
                                logger, .warning,
                                "signal rejected",
                                metadata: ["bitten.reason": "\(error)"])
                        }
                    }
                }
            } onGracefulShutdown: {
            }
        } else {
            try? await gracefulShutdown()
        }
        board.set(Self.name, .stopped)
    }
}
