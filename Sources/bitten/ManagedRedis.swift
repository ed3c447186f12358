import BittenServices
import Foundation
import Logging
import Redis
import ServiceLifecycle
import Synchronization

/// The redis-server `bitten up` runs when no BITTEN_REDIS_URL is given: data in `DATA_DIR/redis`
/// with AOF on, a free loopback port, and a state file so that a restarted `bitten up` (after a
/// crash) finds and reuses the running server instead of starting a second one.
enum ManagedRedis {
    static func start(dataDir: String, logger: Logger) throws -> LocalRedisServer {
        let directory = (dataDir as NSString).appendingPathComponent("redis")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let stateFile = (directory as NSString).appendingPathComponent("managed-redis.state")
        if let text = try? String(contentsOfFile: stateFile, encoding: .utf8) {
            let parts = text.split(separator: " ").compactMap {
                Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            if parts.count == 2 {
                let adopted = LocalRedisServer(adoptingPID: pid_t(parts[0]), port: parts[1])
                if adopted.isRunning,
                    (try? RedisConnection(url: adopted.url, timeout: .milliseconds(500)).command(["PING"]))
                        == .status("PONG")
                {
                    logger.notice(
                        "reusing managed redis-server",
                        metadata: ["bitten.process.pid": "\(parts[0])", "bitten.socket.port": "\(parts[1])"])
                    return adopted
                }
            }
        }
        let port = LocalRedisServer.freeLoopbackPort()
        let server = try LocalRedisServer(
            port: port, directory: directory, appendOnly: true,
            logFile: (directory as NSString).appendingPathComponent("redis-server.log"))
        try "\(server.pid) \(port)\n".write(toFile: stateFile, atomically: true, encoding: .utf8)
        logger.notice(
            "started managed redis-server",
            metadata: [
                "bitten.process.pid": "\(server.pid)", "bitten.socket.port": "\(port)",
                "bitten.process.dir": "\(directory)",
            ])
        return server
    }

    static func stop(_ server: LocalRedisServer, dataDir: String, logger: Logger) {
        server.stop()
        let stateFile = (dataDir as NSString).appendingPathComponent("redis/managed-redis.state")
        try? FileManager.default.removeItem(atPath: stateFile)
        logger.notice("stopped managed redis-server", metadata: ["bitten.process.pid": "\(server.pid)"])
    }
}

/// The Redis Cluster `bitten up --redis-cluster` runs when no BITTEN_REDIS_URL is given: three primaries
/// with one replica each on loopback, AOF on, data in `DATA_DIR/redis-cluster/PORT`. The ports are kept in
/// `cluster.ports` so that the next start brings the same cluster back with its data (each server rejoins
/// from its `nodes.conf`); a state file of the running servers lets a restarted `bitten up` (after a crash)
/// adopt them instead of starting a second cluster.
enum ManagedCluster {
    static func directory(_ dataDir: String) -> String { (dataDir as NSString).appendingPathComponent("redis-cluster") }
    static func stateFile(_ dataDir: String) -> String {
        (directory(dataDir) as NSString).appendingPathComponent("managed-cluster.state")
    }
    static func portsFile(_ dataDir: String) -> String {
        (directory(dataDir) as NSString).appendingPathComponent("cluster.ports")
    }

    /// The running servers' ports, from the state file (for `bitten check`).
    static func runningPorts(dataDir: String) -> [Int]? {
        guard let text = try? String(contentsOfFile: stateFile(dataDir), encoding: .utf8) else { return nil }
        let ports = text.split(separator: "\n").compactMap { line -> Int? in
            let parts = line.split(separator: " ")
            return parts.count == 2 ? Int(parts[1]) : nil
        }
        return ports.isEmpty ? nil : ports
    }

    static func url(_ cluster: LocalRedisCluster) -> RedisClusterURL {
        RedisClusterURL(seeds: cluster.ports.map { ClusterEndpoint(host: "127.0.0.1", port: $0) })
    }

    static func start(dataDir: String, logger: Logger) throws -> LocalRedisCluster {
        let directory = directory(dataDir)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Left running by a `bitten up` that did not stop cleanly: adopt it when every server answers.
        if let text = try? String(contentsOfFile: stateFile(dataDir), encoding: .utf8) {
            let servers = text.split(separator: "\n").compactMap { line -> LocalRedisServer? in
                let parts = line.split(separator: " ").compactMap { Int($0) }
                return parts.count == 2 ? LocalRedisServer(adoptingPID: pid_t(parts[0]), port: parts[1]) : nil
            }
            let alive =
                !servers.isEmpty
                && servers.allSatisfy { server in
                    server.isRunning
                        && (try? RedisConnection(url: server.url, timeout: .milliseconds(500)).command(["PING"]))
                            == .status("PONG")
                }
            if alive {
                let adopted = LocalRedisCluster(adopting: servers, directory: directory)
                do {
                    try adopted.waitUntilOK(timeout: .seconds(10))
                    logger.notice(
                        "reusing managed redis cluster", metadata: ["bitten.socket.ports": "\(adopted.ports)"])
                    return adopted
                } catch {
                    logger.warning(
                        "the managed cluster left running is not healthy: stopping it",
                        metadata: ["bitten.error": "\(error.message)"])
                    adopted.stop()
                }
            }
        }
        // The cluster that ran here before comes back on its ports with its data.
        var ports: [Int]?
        if let text = try? String(contentsOfFile: portsFile(dataDir), encoding: .utf8) {
            let known = text.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
            if known.count == 6 {
                if let busy = known.first(where: {
                    !LocalRedisCluster.isFree($0) || !LocalRedisCluster.isFree($0 + 10_000)
                }) {
                    throw StartupError(
                        "port \(busy) (or its cluster bus port \(busy + 10_000)) of the managed Redis Cluster in \(directory) is in use: stop what holds it, or remove \(directory) to start an empty cluster"
                    )
                }
                ports = known
            }
        }
        let cluster: LocalRedisCluster
        do {
            cluster = try LocalRedisCluster(ports: ports, directory: directory, appendOnly: true, logFiles: true)
        } catch {
            throw StartupError("the managed Redis Cluster did not start: \(error.message)")
        }
        try cluster.ports.map(String.init).joined(separator: " ").appending("\n").write(
            toFile: portsFile(dataDir), atomically: true, encoding: .utf8)
        try cluster.servers.map { "\($0.pid) \($0.port)" }.joined(separator: "\n").appending("\n")
            .write(toFile: stateFile(dataDir), atomically: true, encoding: .utf8)
        logger.notice(
            ports == nil ? "started a managed redis cluster" : "restarted the managed redis cluster",
            metadata: ["bitten.socket.ports": "\(cluster.ports)", "bitten.process.dir": "\(directory)"])
        return cluster
    }

    static func stop(_ cluster: LocalRedisCluster, dataDir: String, logger: Logger) {
        cluster.stop()
        try? FileManager.default.removeItem(atPath: stateFile(dataDir))
        logger.notice("stopped the managed redis cluster", metadata: ["bitten.socket.ports": "\(cluster.ports)"])
    }
}

/// The managed Redis (one server or a local cluster) as the first service of the group: started before the group
/// runs (every client needs its address), stopped when the group has shut everything else down (the group stops in
/// reverse order), or when the group fails.
final class ManagedRedisService: Service, Sendable {
    enum Managed: Sendable {
        case server(LocalRedisServer)
        case cluster(LocalRedisCluster)
    }

    let managed: Managed
    let dataDir: String
    let logger: Logger
    private let stopped = Mutex(false)

    init(_ managed: Managed, dataDir: String, logger: Logger) {
        self.managed = managed
        self.dataDir = dataDir
        self.logger = logger
    }

    func run() async throws {
        try? await gracefulShutdown()
        stop()
    }

    /// Stops the server(s), once (also called by the root when the group never ran).
    func stop() {
        guard
            stopped.withLock({ done in
                defer { done = true }
                return !done
            })
        else { return }
        switch managed {
        case .server(let server): ManagedRedis.stop(server, dataDir: dataDir, logger: logger)
        case .cluster(let cluster): ManagedCluster.stop(cluster, dataDir: dataDir, logger: logger)
        }
    }
}
