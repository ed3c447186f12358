import Foundation
import Synchronization

/// The lifecycle state of one service.
public enum ServiceState: String, Sendable, Codable {
    case starting, running, stopping, stopped, failed
}

/// What the dashboard shows about one service.
public struct ServiceReport: Sendable, Codable, Equatable {
    /// The name.
    public var name: String
    /// Where it stands in its lifecycle.
    public var state: ServiceState
    /// When it started (epoch seconds).
    public var startedAt: Double?
    /// When it last did something (epoch seconds).
    public var lastActivity: Double?
    /// Messages received.
    public var messagesIn: Int
    /// Messages sent.
    public var messagesOut: Int
    /// Errors counted.
    public var errors: Int
    /// Restarts.
    public var restarts: Int
    /// A line about what it is doing.
    public var detail: String?
    /// Seconds since it started (filled in when read).
    public var uptimeSeconds: Double?
}

/// Every service's state and counters, shared by the services (writers) and the dashboard (reader).
public final class ServiceBoard: Sendable {
    private let reports = Mutex<[String: ServiceReport]>([:])
    private let now: @Sendable () -> Double

    /// Creates a board; `now` returns epoch seconds (injected for tests).
    public init(now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) { self.now = now }

    /// Declares a service (state `starting`).
    public func register(_ name: String) {
        reports.withLock {
            if $0[name] == nil {
                $0[name] = ServiceReport(
                    name: name, state: .starting, messagesIn: 0, messagesOut: 0, errors: 0, restarts: 0)
            }
        }
    }

    /// Sets a service's state (and the start time when it becomes running).
    public func set(_ name: String, _ state: ServiceState, detail: String? = nil) {
        let time = now()
        reports.withLock {
            var report =
                $0[name]
                ?? ServiceReport(name: name, state: state, messagesIn: 0, messagesOut: 0, errors: 0, restarts: 0)
            if state == .running && report.state != .running {
                if report.startedAt != nil { report.restarts += 1 }
                report.startedAt = time
            }
            report.state = state
            report.detail = detail
            $0[name] = report
        }
    }

    /// Adds to a service's counters and stamps its last activity.
    public func count(_ name: String, in received: Int = 0, out sent: Int = 0, errors: Int = 0) {
        let time = now()
        reports.withLock {
            guard var report = $0[name] else { return }
            report.messagesIn += received
            report.messagesOut += sent
            report.errors += errors
            report.lastActivity = time
            $0[name] = report
        }
    }

    /// Every report, sorted by name.
    public var all: [ServiceReport] {
        let now = Date().timeIntervalSince1970
        return reports.withLock { $0.values.sorted { $0.name < $1.name } }.map { report in
            var report = report
            report.uptimeSeconds = report.startedAt.map { max(0, now - $0) }
            return report
        }
    }

    /// One report.
    public func report(_ name: String) -> ServiceReport? { reports.withLock { $0[name] } }
}
