import Foundation
import Logging
import Redis

/// The redis-server `bitten up` runs when no BITTEN_REDIS_URL is given: data in `DATA_DIR/redis`
/// with AOF on, a free loopback port, and a state file so that a restarted `bitten up` (after a
/// crash) finds and reuses the running server instead of starting a second one.
enum ManagedRedis {
    static func start(dataDir: String, logger: Logger) throws -> LocalRedisServer {
        let directory = (dataDir as NSString).appendingPathComponent("redis")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let stateFile = (directory as NSString).appendingPathComponent("managed-redis.state")
        if let text = try? String(contentsOfFile: stateFile, encoding: .utf8) {
            let parts = text.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if parts.count == 2 {
                let adopted = LocalRedisServer(adoptingPID: pid_t(parts[0]), port: parts[1])
                if adopted.isRunning,
                   (try? RedisConnection(url: adopted.url, timeout: .milliseconds(500)).command(["PING"])) == .status("PONG") {
                    logger.notice("reusing managed redis-server", metadata: ["pid": "\(parts[0])", "port": "\(parts[1])"])
                    return adopted
                }
            }
        }
        let port = LocalRedisServer.freeLoopbackPort()
        let server = try LocalRedisServer(
            port: port, directory: directory, appendOnly: true,
            logFile: (directory as NSString).appendingPathComponent("redis-server.log"))
        try "\(server.pid) \(port)\n".write(toFile: stateFile, atomically: true, encoding: .utf8)
        logger.notice("started managed redis-server", metadata: ["pid": "\(server.pid)", "port": "\(port)", "dir": "\(directory)"])
        return server
    }

    static func stop(_ server: LocalRedisServer, dataDir: String, logger: Logger) {
        server.stop()
        let stateFile = (dataDir as NSString).appendingPathComponent("redis/managed-redis.state")
        try? FileManager.default.removeItem(atPath: stateFile)
        logger.notice("stopped managed redis-server", metadata: ["pid": "\(server.pid)"])
    }
}
