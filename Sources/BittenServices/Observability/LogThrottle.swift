import Foundation
import Logging
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

    /// Logs `message` at `level` unless held back, with `metadata` and how many lines were held back since the last
    /// one let through (`bitten.log.suppressed`).
    public func log(
        _ logger: Logger, _ level: Logger.Level, _ message: @autoclosure () -> Logger.Message,
        metadata: @autoclosure () -> Logger.Metadata = [:], file: String = #fileID, function: String = #function,
        line: UInt = #line, now: Double = Date().timeIntervalSince1970
    ) {
        guard let suppressed = allow(now: now) else { return }
        var all = metadata()
        all["bitten.log.suppressed"] = "\(suppressed)"
        logger.log(level: level, message(), metadata: all, file: file, function: function, line: line)
    }
}
