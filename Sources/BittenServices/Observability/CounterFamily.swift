import Metrics
import Synchronization

/// Counters of one name, one per value of a dimension (`bitten_trade_errors_total{operation=…}`), each made the first
/// time its value is counted.
public final class CounterFamily: Sendable {
    let label: String
    let dimension: String
    let counters = Mutex<[String: Counter]>([:])

    /// The family `label{dimension=…}`.
    public init(_ label: String, dimension: String) {
        self.label = label
        self.dimension = dimension
    }

    /// The counter of `value`.
    public func counter(_ value: String) -> Counter {
        counters.withLock { counters in
            if let counter = counters[value] { return counter }
            let counter = Counter(label: label, dimensions: [(dimension, value)])
            counters[value] = counter
            return counter
        }
    }

    /// Counts one (or `count`) for `value`.
    public func increment(_ value: String, by count: Int = 1) { counter(value).increment(by: count) }
}
