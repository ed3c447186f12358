import Logging
import Metrics
import Synchronization

/// Failures the trade path survives without failing the caller (the record is read again, or the
/// command times out and is reported): none is silent. Each is counted by operation
/// (`bitten_trade_errors_total{operation}`) and logged, at most a few lines a minute per process.
public final class SwallowedErrors: Sendable {
    private let logger: Logger
    private let throttle = LogThrottle(limit: 20, window: 60)
    private let counters = CounterFamily("bitten_trade_errors_total", dimension: "operation")

    /// Errors logged to `logger`.
    public init(logger: Logger) { self.logger = logger }

    /// Runs `body`; a failure is counted and logged under `operation`, and nil returned.
    @discardableResult
    public func attempt<T>(
        _ operation: String, _ context: @autoclosure () -> String = "",
        _ body: () async throws -> T
    ) async -> T? {
        do {
            return try await body()
        } catch {
            note(operation, error, context())
            return nil
        }
    }

    /// Counts and logs one failure.
    public func note(_ operation: String, _ error: any Error, _ context: String = "") {
        counters.increment(operation)
        throttle.log(
            logger, .warning,
            "trade path: \(operation) failed",
            metadata: [
                "bitten.error": "\(error)", "bitten.context": "\(context)",
            ])
    }
}
