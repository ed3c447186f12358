import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// Where CURVE keys live: `$BITTEN_DATA_DIR/curve/server.key` (secret, 0600), `server.pub`, and the
/// allow-list `allowed_clients` (one Z85 public key per line, `#` comments).
public enum CurveFiles {
    /// `DATA_DIR/curve`.
    public static func directory(_ dataDir: String) -> String { (dataDir as NSString).appendingPathComponent("curve") }
    /// The server's secret key file (0600).
    public static func secretKey(_ dataDir: String) -> String {
        (directory(dataDir) as NSString).appendingPathComponent("server.key")
    }
    /// The server's public key file.
    public static func publicKey(_ dataDir: String) -> String {
        (directory(dataDir) as NSString).appendingPathComponent("server.pub")
    }
    /// The allowed client keys, one per line.
    public static func allowList(_ dataDir: String) -> String {
        (directory(dataDir) as NSString).appendingPathComponent("allowed_clients")
    }
    /// The Redis set also read for allowed client keys.
    public static let redisSet = "curve:allowed_clients"

    /// Reads the server's secret key, refusing a file others can read.
    public static func loadSecret(_ dataDir: String) throws -> String {
        let path = secretKey(dataDir)
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let text = try? String(contentsOfFile: path, encoding: .utf8)
        else {
            throw StartupError("BITTEN_CURVE is on but \(path) does not exist: run `bitten keys generate` first")
        }
        if let mode = attributes[.posixPermissions] as? Int, mode & 0o077 != 0 {
            throw StartupError("\(path) is readable by others (mode \(String(mode, radix: 8))); chmod 600 it")
        }
        let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard key.count == 40 else { throw StartupError("\(path) does not hold a 40-character Z85 secret key") }
        return key
    }

    /// Keys in an allow-list file (40-character Z85 lines; blank lines and `#` comments skipped).
    public static func parseAllowList(_ text: String) -> Set<String> {
        Set(
            text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { $0.count == 40 && !$0.hasPrefix("#") })
    }
}

/// The allowed client keys, from the file and the Redis set, swapped in whole on each refresh.
public final class CurveAllowList: Sendable {
    private let keys = Mutex<Set<String>>([])
    /// An empty list.
    public init() {}
    /// Whether `key` may connect.
    public func contains(_ key: String) -> Bool { keys.withLock { $0.contains(key) } }
    /// Replaces the list (a reload).
    public func replace(_ new: Set<String>) { keys.withLock { $0 = new } }
    /// How many keys are allowed.
    public var count: Int { keys.withLock { $0.count } }
}

/// The source networks allowed on the EA sockets (`BITTEN_EA_NETWORKS`, the file
/// `$BITTEN_DATA_DIR/ea_networks` and the Redis set `ea:allowed_networks`), swapped in whole on each refresh.
public final class NetworkGate: Sendable {
    /// The Redis set also read for allowed networks.
    public static let redisSet = "ea:allowed_networks"
    /// The networks file in the data directory.
    public static func file(_ dataDir: String) -> String { (dataDir as NSString).appendingPathComponent("ea_networks") }

    private let list: Mutex<NetworkAllowList>
    /// From the setting: always allowed, whatever the file and the set say.
    public let configured: NetworkAllowList
    private let refusedCounter = Counter(
        label: "bitten_ea_connections_refused_total", dimensions: [("reason", "network")])

    /// A gate over the configured networks.
    public init(configured: NetworkAllowList) {
        self.configured = configured
        list = Mutex(configured)
    }

    /// Whether a peer at `address` may connect.
    public func allows(_ address: String) -> Bool { list.withLock { $0.allows(address) } }
    /// Replaces the networks (a reload).
    public func replace(_ new: NetworkAllowList) { list.withLock { $0 = new } }
    /// How many networks are allowed.
    public var count: Int { list.withLock { $0.networks.count } }
    /// Counts a refused connection.
    public func refused() { refusedCounter.increment() }
}

/// Serves ZAP for the EA sockets and reloads the CURVE key allow-list and the network allow-list
/// every `refresh` (files and Redis sets), so both change without a restart. A refused connection is
/// logged (throttled) with its address.
public final class CurveGuard: Service, Sendable {
    /// The name on the services board.
    public static let name = "curve_guard"
    private let zap: ZAPHandler
    private let allowList: CurveAllowList?
    private let networks: NetworkGate?
    private let dataDir: String
    private let redis: RedisClient?
    private let refresh: Duration
    private let logger: Logger
    private let board: ServiceBoard

    /// The ZAP handler's guard over keys and networks, reloading them from the data directory.
    public init(
        zap: ZAPHandler, allowList: CurveAllowList?, networks: NetworkGate? = nil, dataDir: String, redis: RedisClient?,
        board: ServiceBoard, refresh: Duration = .seconds(2), logger: Logger
    ) {
        self.zap = zap
        self.allowList = allowList
        self.networks = networks
        self.dataDir = dataDir
        self.redis = redis
        self.refresh = refresh
        self.logger = logger
        self.board = board
        board.register(Self.name)
    }

    /// Reads the files and the Redis sets now.
    public func reload() async {
        var detail: [String] = []
        if let allowList {
            var keys = CurveFiles.parseAllowList(
                (try? String(contentsOfFile: CurveFiles.allowList(dataDir), encoding: .utf8)) ?? "")
            if let redis, let members = try? await redis.command(["SMEMBERS", CurveFiles.redisSet]).array {
                keys.formUnion(members.compactMap(\.string).filter { $0.count == 40 })
            }
            let before = allowList.count
            allowList.replace(keys)
            if keys.count != before {
                logger.notice("CURVE allow-list loaded", metadata: ["bitten.curve.allowed_keys": "\(keys.count)"])
            }
            detail.append("\(keys.count) client keys allowed")
        }
        if let networks {
            var text = (try? String(contentsOfFile: NetworkGate.file(dataDir), encoding: .utf8)) ?? ""
            if let redis, let members = try? await redis.command(["SMEMBERS", NetworkGate.redisSet]).array {
                text += "\n" + members.compactMap(\.string).joined(separator: "\n")
            }
            let (loaded, invalid) = NetworkAllowList.parse(text)
            if !invalid.isEmpty {
                logger.warning(
                    "entries that are not networks are ignored",
                    metadata: ["bitten.socket.networks": "\(invalid.prefix(5))"])
            }
            let merged = NetworkAllowList(networks.configured.networks + loaded.networks)
            let before = networks.count
            networks.replace(merged)
            if merged.networks.count != before {
                logger.notice(
                    "EA network allow-list loaded", metadata: ["bitten.socket.networks": "\(merged.networks.count)"])
            }
            detail.append("\(merged.networks.count) EA networks allowed")
        }
        board.set(Self.name, .running, detail: detail.joined(separator: ", "))
    }

    /// Answers ZAP requests and reloads the lists until shutdown.
    public func run() async throws {
        await reload()
        await withDiscardingTaskGroup { group in
            group.addTask { await self.zap.serve() }
            group.addTask {
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.refresh) }
                    await self.reload()
                }
                self.zap.close()
            }
        }
        board.set(Self.name, .stopped)
    }
}
