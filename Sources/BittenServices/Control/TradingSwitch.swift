import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization

/// The system's trading state as one trade process enforces it. It reads `bitten:control` every
/// `pollInterval` (so a change is in force here within a second), and gates every send: a fire goes only while
/// the state is `active`, a close while it is not `halted`. When it takes a new version it waits for the sends
/// already past the gate to finish, then acknowledges the version (`bitten:control:acks`): once every running
/// process has acknowledged a halt, nothing more is sent.
///
/// Until the state has been read once, and when it could not be read for `staleAfter` seconds (Redis away),
/// fires are refused (`store_unavailable`): a halt set meanwhile must not be missed.
public final class TradingSwitch: Service, Sendable {
    /// The name on the services board, in the CLI and in `logs/`.
    public static let name = "control"

    struct Inner {
        var control: TradingControl?
        var readAt: Double = 0
        var sends = 0
        var acknowledged = 0
    }

    let store: TradingControlStore
    /// This process, as it acknowledges (`instance/host/pid`).
    public let process: String
    let board: ServiceBoard
    let logger: Logger
    let pollInterval: Duration
    let staleAfter: Double
    let now: @Sendable () -> Double
    let inner = Mutex(Inner())
    let closeAllHandler = Mutex<(@Sendable (TradingControl) async -> Void)?>(nil)
    let refused = Counter(label: "bitten_trading_gate_refusals_total")

    /// The switch over `store`; `instance` names the deployment's process.
    public init(
        store: TradingControlStore, instance: String, board: ServiceBoard, logger: Logger,
        pollInterval: Duration = .milliseconds(250), staleAfter: Double = 3,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.store = store
        self.process = "\(instance)/\(ProcessInfo.processInfo.hostName)/\(getpid())"
        self.board = board
        self.logger = logger
        self.pollInterval = pollInterval
        self.staleAfter = staleAfter
        self.now = now
        board.register(Self.name)
    }

    /// What to do when a new state asks for every open position to be closed (the fire desk's close-all).
    public func onCloseAll(_ handler: @escaping @Sendable (TradingControl) async -> Void) {
        closeAllHandler.withLock { $0 = handler }
    }

    /// The state in force here (nil until read once).
    public var current: TradingControl? { inner.withLock { $0.control } }

    /// Why a fire (`fire`) or a close would be refused at `at`, or nil.
    public func refusal(fire: Bool, at: Double) -> FireRefusal? {
        inner.withLock { refusal(in: $0, fire: fire, at: at) }
    }

    private func refusal(in state: Inner, fire: Bool, at: Double) -> FireRefusal? {
        guard let control = state.control else {
            return fire ? FireRefusal(.storeUnavailable, "the trading state has not been read yet (Redis)") : nil
        }
        if fire, at - state.readAt > staleAfter {
            return FireRefusal(
                .storeUnavailable, "the trading state could not be read for \(Int(at - state.readAt)) s (Redis)")
        }
        return fire
            ? control.fireRefusal(at: at, subject: "trading") : control.closeRefusal(at: at, subject: "trading")
    }

    /// Passes the gate for one send (a fire, or a close unless `forced`): nil, and the send counts as in
    /// flight until `leave()`; or why not.
    public func enter(fire: Bool, forced: Bool = false) -> FireRefusal? {
        let at = now()
        let refusal: FireRefusal? = inner.withLock { state in
            if !forced, let refusal = self.refusal(in: state, fire: fire, at: at) { return refusal }
            state.sends += 1
            return nil
        }
        if refusal != nil { refused.increment() }
        return refusal
    }

    /// A send that passed the gate is over.
    public func leave() { inner.withLock { $0.sends -= 1 } }

    /// Reads the state once; a new version is taken (the sends in flight finished) and acknowledged.
    public func poll() async {
        do {
            let read = try await store.read()
            let at = now()
            // Whatever is stored is in force (a version that went back means the key was reset: taken as well).
            let previous = inner.withLock { state -> TradingControl? in
                let previous = state.control
                state.control = read
                state.readAt = at
                return previous
            }
            var closeAll: TradingControl?
            if previous == nil || read.version != previous!.version || read.state != previous!.state {
                await drainSends()
                if let previous, previous.state != read.state || read.closeAll {
                    logger.notice(
                        "trading state changed",
                        metadata: [
                            "bitten.trading.state": "\(read.state.rawValue)", "bitten.trading.by": "\(read.by)",
                            "bitten.trading.reason": "\(read.reason)", "bitten.trading.version": "\(read.version)",
                        ])
                }
                if read.closeAll, read.state != .active, at - read.at < 86_400 { closeAll = read }
            }
            try await store.acknowledge(process: process, version: read.version)
            inner.withLock { $0.acknowledged = read.version }
            board.set(Self.name, .running, detail: read.state.rawValue)
            // After the acknowledgement (no fire goes any more): the positions of a close-all, however many.
            if let closeAll, let handler = closeAllHandler.withLock({ $0 }) { await handler(closeAll) }
        } catch {
            board.count(Self.name, errors: 1)
            board.set(Self.name, .running, detail: "cannot read the trading state: \(error)")
        }
    }

    /// Waits until the sends that passed the gate before the change are over (a send is a hand-over to the
    /// gateway: milliseconds).
    private func drainSends() async {
        for _ in 0..<2_000 where inner.withLock({ $0.sends }) > 0 {
            try? await Task.sleep(for: .milliseconds(2))
        }
        let left = inner.withLock { $0.sends }
        if left > 0 {
            logger.warning(
                "trading state acknowledged while sends are still under way after 4 s",
                metadata: ["bitten.trading.sends": "\(left)"])
        }
    }

    /// Reads the state every `pollInterval` until shutdown, then withdraws the acknowledgement.
    public func run() async throws {
        board.set(Self.name, .starting)
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                await poll()
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.pollInterval) }
            }
        } onGracefulShutdown: {
        }
        try? await store.withdraw(process: process)
        board.set(Self.name, .stopped)
    }
}
