import BittenCore
import BittenServices
import Foundation
import Redis
import Synchronization

/// The body of `GET /health`.
struct HealthReport: Encodable {
    struct RedisStatus: Encodable {
        var reachable: Bool
        var state: String
        var pingMs: Double?
        var usedMemoryBytes: Int?
        /// `single` or `cluster`.
        var mode: String?
        /// On a cluster: the primaries that answered (memory is their sum).
        var primaries: Int?
    }
    struct PortStatus: Encodable {
        var name: String
        var port: Int
        var socketType: String
        var received: Int
        var sent: Int
        var failed: Int
        /// Messages per second over the last few seconds (nil until two samples exist).
        var receivedPerSecond: Double?
        var sentPerSecond: Double?
    }
    struct ProcessStatus: Encodable {
        var pid: Int32
        var uptimeSeconds: Double
        var rssBytes: Int?
        /// The RSS right after the monitor last handed freed memory back (every 30 s), and when.
        var rssAfterReleaseBytes: Int?
        var memoryReleasedAt: Double?
        var cpuSeconds: Double?
        var dataDirFreeBytes: Int?
    }

    var status: String
    var version: String
    var healthScore: Int?
    var healthFactors: [String: Double]?
    var redis: RedisStatus
    var services: [ServiceReport]
    var ports: [PortStatus]
    var nodes: NodeCounts?
    var process: ProcessStatus
    /// Services this process does not run, and why (e.g. the trade path on a Redis Cluster).
    var notRunning: [String: String]?

    struct NodeCounts: Encodable {
        var online: Int
        var total: Int
    }
}

/// The process's start time and resource use, for `/health`.
public enum ProcessStats {
    static let started = Date()

    /// User + system CPU seconds of this process, from getrusage.
    public static var cpuSeconds: Double? {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return nil }
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    static func freeBytes(at path: String) -> Int? {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return nil }
        return Int(stats.f_bavail) * Int(stats.f_frsize)
    }
}

extension DashboardDependencies {
    func healthReport() async -> HealthReport {
        var redisStatus = HealthReport.RedisStatus(
            reachable: false, state: redis?.state.description ?? "not configured")
        if let redis {
            let clock = ContinuousClock()
            let start = clock.now
            redisStatus.mode = redis.isCluster ? "cluster" : "single"
            if let infos = try? await redis.commandOnEveryPrimary(["INFO", "memory"]) {
                let elapsed = clock.now - start
                redisStatus.reachable = true
                redisStatus.state = redis.state.description
                redisStatus.pingMs =
                    Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
                let used = infos.compactMap {
                    RedisConnection.infoField("used_memory", in: $0.string ?? "").flatMap { Int($0) }
                }
                redisStatus.usedMemoryBytes = used.isEmpty ? nil : used.reduce(0, +)
                if redis.isCluster { redisStatus.primaries = infos.count }
            } else {
                redisStatus.state = redis.state.description
            }
        }
        let services = board.all
        let score = monitor?.health
        let anyFailed = services.contains { $0.state == .failed }
        var status: String
        if !redisStatus.reachable || anyFailed {
            status = "degraded"
        } else if let score {
            status = score.status.rawValue
        } else {
            status = "healthy"
        }
        if services.contains(where: { $0.state == .stopped || $0.state == .stopping }) { status = "stopping" }
        let rates = PortRates.shared.update(sockets?.bound.map { ($0.name, $0.stats.received, $0.stats.sent) } ?? [])
        let ports = (sockets?.bound ?? []).map {
            HealthReport.PortStatus(
                name: $0.name, port: $0.port, socketType: $0.type, received: $0.stats.received,
                sent: $0.stats.sent, failed: $0.stats.failed,
                receivedPerSecond: rates[$0.name]?.0, sentPerSecond: rates[$0.name]?.1)
        }
        let counts = registry.map { r -> HealthReport.NodeCounts in
            let c = r.counts()
            return .init(online: c.online, total: c.total)
        }
        return HealthReport(
            status: status, version: version, healthScore: score?.score, healthFactors: score?.factors,
            redis: redisStatus,
            services: services, ports: ports, nodes: counts,
            process: .init(
                pid: getpid(), uptimeSeconds: Date().timeIntervalSince(ProcessStats.started),
                rssBytes: MemoryTuning.residentBytes, rssAfterReleaseBytes: monitor?.memoryRelease?.rssBytes,
                memoryReleasedAt: monitor?.memoryRelease?.at, cpuSeconds: ProcessStats.cpuSeconds,
                dataDirFreeBytes: ProcessStats.freeBytes(at: dataDir)),
            notRunning: notRunning.isEmpty ? nil : notRunning)
    }
}

/// Per-port message rates: counters sampled when `/health` is read, rates over the span between
/// the newest sample and one at least 2 s older (samples kept for 30 s).
final class PortRates: Sendable {
    static let shared = PortRates()
    private let samples = Mutex<[(at: Double, counts: [String: (Int, Int)])]>([])

    func update(_ counts: [(String, Int, Int)]) -> [String: (Double, Double)] {
        let now = Date().timeIntervalSince1970
        let current = Dictionary(counts.map { ($0.0, ($0.1, $0.2)) }, uniquingKeysWith: { a, _ in a })
        return samples.withLock { list in
            list.removeAll { now - $0.at > 30 }
            let base = list.last { now - $0.at >= 2 }
            if list.last.map({ now - $0.at >= 1 }) ?? true { list.append((now, current)) }
            guard let base else { return [:] }
            let span = now - base.at
            var rates: [String: (Double, Double)] = [:]
            for (name, value) in current {
                guard let old = base.counts[name] else { continue }
                rates[name] = (Double(value.0 - old.0) / span, Double(value.1 - old.1) / span)
            }
            return rates
        }
    }
}
