import BittenCore
import Logging
import ServiceLifecycle
import ZeroMQ

/// Holds the CITADEL query socket until the CITADEL service exists: the REP on 5566 always answers
/// (a REP that stays silent locks its client) with the protocol's error shape. Signals are taken by
/// `SignalIntake`.
public final class CitadelStandIn: Service, Sendable {
    public static let name = "citadel"

    private let query: LoopSocket?
    private let board: ServiceBoard

    public init(query: LoopSocket?, board: ServiceBoard) {
        self.query = query
        self.board = board
        board.register(Self.name)
    }

    /// The reply to every protection query until scoring exists.
    public static let unavailableReply =
        #"{"error":"CITADEL scoring is not available in this build","protection_score":1.0,"risk_level":"ERROR"}"#

    public func run() async throws {
        board.set(Self.name, .running, detail: "stand-in: protection scoring not built yet")
        if let query {
            await withGracefulShutdownHandler {
                for await batch in query.messages.cancelOnGracefulShutdown() {
                    for _ in batch {
                        try? await query.send(Message(strings: [CitadelStandIn.unavailableReply]))
                        self.board.count(Self.name, in: 1, out: 1)
                    }
                }
            } onGracefulShutdown: {}
        }
        board.set(Self.name, .stopped)
    }
}
