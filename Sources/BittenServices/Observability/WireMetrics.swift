import BittenCore
import Metrics
import Synchronization

/// Counters of messages per port, created once per label set (ports and reasons are bounded).
public final class WireMetrics: Sendable {
    private let port: String
    private let received: Counter
    private let sent: Counter
    private let rejected: [WireError.Code: Counter]
    private let rejectedOther: Counter

    /// Counters for one port; `decodes` adds the rejected-by-reason counters of a port that reads input.
    public init(port: Int, decodes: Bool = true) {
        self.port = String(port)
        received = Counter(label: "bitten_messages_received_total", dimensions: [("port", self.port)])
        sent = Counter(label: "bitten_messages_sent_total", dimensions: [("port", self.port)])
        var rejected: [WireError.Code: Counter] = [:]
        for code in WireError.Code.allCases where decodes {
            rejected[code] = Counter(
                label: "bitten_messages_rejected_total",
                dimensions: [("port", self.port), ("reason", code.rawValue)])
        }
        self.rejected = rejected
        rejectedOther = Counter(
            label: "bitten_messages_rejected_total", dimensions: [("port", self.port), ("reason", "other")])
    }

    /// Counts messages received.
    public func receivedMessages(_ count: Int) { if count > 0 { received.increment(by: count) } }
    /// Counts messages sent.
    public func sentMessages(_ count: Int) { if count > 0 { sent.increment(by: count) } }
    /// Counts a message refused by its decoder.
    public func rejected(_ error: WireError) { (rejected[error.code] ?? rejectedOther).increment() }
    /// Counts a message refused for `reason`.
    public func rejected(reason: String) {
        if let code = WireError.Code(rawValue: reason) {
            rejected[code]?.increment()
        } else {
            rejectedOther.increment()
        }
    }
}
