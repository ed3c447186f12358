/// When to (re)connect: a pure state machine, driven by events that carry the time (the caller's
/// clock) and a random source for jitter, so that it is tested without a server or a real clock.
///
/// The first attempt after a lost connection is immediate; failed attempts wait `initial`,
/// `initial × multiplier`, … up to `maximum`, each spread by ±`jitter` so that many clients that lost
/// one server do not come back in step. A successful connection resets the sequence.
public struct ReconnectBackoff: Sendable {
    /// Where the back-off stands.
    public enum State: Sendable, Equatable {
        /// Not started, or stopped.
        case idle
        /// An attempt is under way (`failures` failed before it).
        case connecting(failures: Int)
        /// Connected since that time.
        case connected(since: Double)
        /// Waiting until that time before the next attempt.
        case waiting(until: Double, failures: Int)
    }

    /// What the caller should do now.
    public enum Action: Sendable, Equatable {
        /// Start a connection attempt now.
        case connect
        /// Do nothing until that time, then call `due(at:)`.
        case wait(until: Double)
        /// Nothing to do.
        case none
    }

    /// The first delay, seconds.
    public let initial: Double
    /// The longest delay, seconds.
    public let maximum: Double
    /// How much each failure multiplies the delay.
    public let multiplier: Double
    /// The share of the delay drawn at random (0–1).
    public let jitter: Double
    /// Idle, or waiting after some failures.
    public private(set) var state: State = .idle
    private var random: @Sendable () -> Double

    /// `random` returns values in 0..<1 (a seeded generator in tests).
    public init(
        initial: Double = 0.05, maximum: Double = 5, multiplier: Double = 2, jitter: Double = 0.2,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = min(max(jitter, 0), 1)
        self.random = random
    }

    /// The pause after `failures` failed attempts, before jitter.
    public func delay(afterFailures failures: Int) -> Double {
        guard failures > 0 else { return 0 }
        var value = initial
        for _ in 1..<failures {
            value *= multiplier
            if value >= maximum { return maximum }
        }
        return min(value, maximum)
    }

    /// The client starts (in `run()`): connect now.
    public mutating func start(at now: Double) -> Action {
        state = .connecting(failures: 0)
        return .connect
    }

    /// The attempt succeeded.
    public mutating func connected(at now: Double) {
        state = .connected(since: now)
    }

    /// The attempt failed: wait, longer each time.
    public mutating func failed(at now: Double) -> Action {
        let failures: Int
        switch state {
        case .connecting(let f): failures = f + 1
        case .waiting(_, let f): failures = f + 1
        default: failures = 1
        }
        let base = delay(afterFailures: failures)
        let spread = base * jitter * (2 * random() - 1)
        let until = now + max(0, min(maximum * (1 + jitter), base + spread))
        state = .waiting(until: until, failures: failures)
        return .wait(until: until)
    }

    /// An established connection was lost: try again at once.
    public mutating func lost(at now: Double) -> Action {
        guard case .connected = state else { return .none }
        state = .connecting(failures: 0)
        return .connect
    }

    /// The time came (or a caller needs the connection): connect when the wait is over.
    public mutating func due(at now: Double) -> Action {
        guard case .waiting(let until, let failures) = state else { return .none }
        guard now >= until else { return .wait(until: until) }
        state = .connecting(failures: failures)
        return .connect
    }

    /// The client stops: no more attempts.
    public mutating func stop() { state = .idle }
}
