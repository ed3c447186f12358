import Foundation
import Synchronization

/// Lets through at most `limit` log lines per `window` seconds, so that a flood of bad input is
/// counted in metrics without flooding the log. Reports how many were held back.
public final class LogThrottle: Sendable {
    private let state = Mutex<(windowStart: Double, count: Int, suppressed: Int)>((0, 0, 0))
    private let limit: Int
    private let window: Double

    /// At most `limit` lines per `window` seconds.
    public init(limit: Int = 10, window: Double = 60) {
        self.limit = limit
        self.window = window
    }

    /// Returns nil to stay quiet, or the number suppressed since the last line that was let through.
    public func allow(now: Double = Date().timeIntervalSince1970) -> Int? {
        state.withLock { s in
            if now - s.windowStart >= window {
                s.windowStart = now
                s.count = 0
            }
            guard s.count < limit else {
                s.suppressed += 1
                return nil
            }
            s.count += 1
            defer { s.suppressed = 0 }
            return s.suppressed
        }
    }
}
