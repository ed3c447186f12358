import BittenCore
import Logging
import ServiceLifecycle
import ZeroMQ

/// Holds the CITADEL sockets until the CITADEL service exists: the REP on 5566 always answers
/// (a REP that stays silent locks its client) with the protocol's error shape, and signals
/// received on 5559 are counted and refused with a logged reason.
public final class CitadelStandIn: Service, Sendable {
    public static let name = "citadel"

    private let query: LoopSocket?
    private let signalIn: LoopSocket?
    private let board: ServiceBoard
    private let logger: Logger
    private let throttle = LogThrottle()
    private let signalMetrics: WireMetrics

    public init(query: LoopSocket?, signalIn: LoopSocket?, board: ServiceBoard, signalInPort: Int, logger: Logger) {
        self.query = query
        self.signalIn = signalIn
        self.board = board
        self.logger = logger
        self.signalMetrics = WireMetrics(port: signalInPort)
        board.register(Self.name)
    }

    /// The reply to every protection query until scoring exists.
    public static let unavailableReply =
        #"{"error":"CITADEL scoring is not available in this build","protection_score":1.0,"risk_level":"ERROR"}"#

    public func run() async throws {
        board.set(Self.name, .running, detail: "stand-in: protection scoring not built yet")
        await withDiscardingTaskGroup { group in
            if let query {
                group.addTask {
                    await withGracefulShutdownHandler {
                        for await batch in query.messages.cancelOnGracefulShutdown() {
                            for _ in batch {
                                try? await query.send(Message(strings: [CitadelStandIn.unavailableReply]))
                                self.board.count(Self.name, in: 1, out: 1)
                            }
                        }
                    } onGracefulShutdown: {}
                }
            }
            if let signalIn {
                group.addTask {
                    await withGracefulShutdownHandler {
                        for await batch in signalIn.messages.cancelOnGracefulShutdown() {
                            self.signalMetrics.receivedMessages(batch.count)
                            for _ in batch { self.signalMetrics.rejected(reason: "not_available") }
                            self.board.count(Self.name, in: batch.count, errors: batch.count)
                            if let suppressed = self.throttle.allow() {
                                self.logger.warning("signal refused: signal intake is not built yet",
                                                    metadata: ["count": "\(batch.count)", "suppressed_since_last": "\(suppressed)"])
                            }
                        }
                    } onGracefulShutdown: {}
                }
            }
        }
        board.set(Self.name, .stopped)
    }
}
