import BittenCore
import Foundation
import Logging
import Redis
import ServiceLifecycle

/// Scale-out: several gateway processes share one Redis. Each EA is connected to one gateway (its
/// node hash says which: `node:{uuid}.gateway`). A command for an EA of another gateway is pushed
/// onto that gateway's inbox list (`gateway:{id}:inbox`); the gateway pops it (one consumer, so it is
/// delivered once), sends it to the EA and pushes the outcome onto `gateway:reply:{request}`.
/// A command whose outcome does not come back in time is reported as not sent by the caller but is
/// never sent again (the fire record then times out like any unanswered command).
public enum GatewayRouting {
    /// The Redis list of commands for a gateway's EAs.
    public static func inbox(_ gateway: String) -> String { RedisKeys.gatewayInbox(gateway) }
    /// The Redis list a routed command's answer goes to.
    public static func reply(_ request: String) -> String { RedisKeys.gatewayReply(request) }
    /// Set (with a short expiry) by a gateway while its inbox loop runs: a gateway whose key is gone
    /// is down, and its nodes cannot be reached however their hashes read.
    public static func alive(_ gateway: String) -> String { RedisKeys.gatewayAlive(gateway) }
    /// Seconds the liveness key lives; the inbox loop renews it at least every second.
    public static let aliveSeconds = 5
}

/// The gateway side: pops this gateway's inbox and sends each command to its EA.
public final class GatewayInbox: Service, Sendable {
    /// The name on the services board.
    public static let name = "gateway_inbox"
    private let gateway: GatewayService
    private let gatewayID: String
    private let redis: RedisClient
    private let board: ServiceBoard
    private let logger: Logger
    private let errors: SwallowedErrors

    /// `redis` should be a client of its own: the pop blocks a connection for up to a second.
    public init(gateway: GatewayService, gatewayID: String, redis: RedisClient, board: ServiceBoard, logger: Logger) {
        self.gateway = gateway
        self.gatewayID = gatewayID
        self.redis = redis
        self.board = board
        self.logger = logger
        self.errors = SwallowedErrors(logger: logger)
        board.register(Self.name)
    }

    /// Delivers routed commands to this gateway's EAs until shutdown.
    public func run() async throws {
        board.set(Self.name, .running, detail: "inbox \(GatewayRouting.inbox(gatewayID))")
        let inbox = GatewayRouting.inbox(gatewayID)
        let alive = GatewayRouting.alive(gatewayID)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let popped: String?
            do {
                _ = try await redis.command([
                    "SET", alive, String(Int(Date().timeIntervalSince1970)), "EX", String(GatewayRouting.aliveSeconds),
                ])
                popped = try await redis.blockingCommand(["BRPOP", inbox, "1"], waitsUpTo: 1).array?.last?.string
            } catch {
                errors.note("inbox_pop", error, inbox)
                try? await Task.sleep(for: .milliseconds(500))
                continue
            }
            guard let text = popped else { continue }
            await handle(text)
        }
        _ = try? await redis.command(["DEL", alive])
        board.set(Self.name, .stopped)
    }

    func handle(_ text: String) async {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: String],
            let request = object["request"], let payload = object["command"],
            let expires = object["expires_at"].flatMap(Double.init)
        else {
            logger.warning("malformed inbox entry", metadata: ["bitten.inbox.entry": "\(text.prefix(200))"])
            board.count(Self.name, errors: 1)
            return
        }
        var outcome = "sent"
        // A command that waited too long (this gateway was down or stalled) is not delivered late.
        guard Date().timeIntervalSince1970 <= expires else {
            logger.warning("routed command expired before delivery", metadata: ["bitten.inbox.request": "\(request)"])
            await errors.attempt("routed_reply", request) {
                try await redis.pipeline([
                    ["LPUSH", GatewayRouting.reply(request), "transport:expired in the inbox"],
                    ["EXPIRE", GatewayRouting.reply(request), "60"],
                ])
            }
            return
        }
        do {
            let command = try EACommand.decode(Array(payload.utf8))
            try await gateway.send(command)
            board.count(Self.name, in: 1, out: 1)
        } catch let error as GatewayError {
            outcome = "\(error.code.rawValue):\(error.message)"
        } catch {
            outcome = "unencodable:\(error)"
        }
        // A lost reply is not a lost command: the sender reports it handed over, and the record times out.
        await errors.attempt("routed_reply", request) {
            try await redis.pipeline([
                ["LPUSH", GatewayRouting.reply(request), outcome], ["EXPIRE", GatewayRouting.reply(request), "60"],
            ])
        }
    }
}

/// The sending side: a command for an EA connected here goes out directly; one for an EA of
/// another gateway goes through that gateway's inbox.
public final class RoutedCommandChannel: CommandChannel, Sendable {
    private let local: GatewayService?
    private let redis: RedisClient
    private let replyTimeout: Int
    /// Seconds a routed command may wait in an inbox before the gateway drops it.
    public static let maxAge = 10.0

    /// A channel through `local` for its EAs and through Redis for the others.
    public init(local: GatewayService?, redis: RedisClient, replyTimeout: Int = 2) {
        self.local = local
        self.redis = redis
        self.replyTimeout = replyTimeout
    }

    /// Reachable here (a route in this process), or through another gateway: the node's hash says it
    /// is online and names a gateway whose liveness key is set.
    public func reachable(_ uuid: String) async -> Bool {
        if let local, local.isConnected(uuid) { return true }
        do {
            let fields = try await redis.command(["HMGET", RedisKeys.node(uuid), "status", "gateway"]).array ?? []
            guard fields.count == 2, fields[0].string == "online", let gateway = fields[1].string, !gateway.isEmpty
            else { return false }
            return try await redis.command(["EXISTS", GatewayRouting.alive(gateway)]).int == 1
        } catch {
            return false
        }
    }

    /// Sends `command` to its EA, wherever it is connected; delivered once, never re-sent.
    public func send(_ command: EACommand) async throws(GatewayError) {
        let uuid = command.targetUUID
        if let local, local.isConnected(uuid) { return try await local.send(command) }
        let gateway: String
        do {
            guard let name = try await redis.command(["HGET", RedisKeys.node(uuid), "gateway"]).string, !name.isEmpty
            else {
                throw GatewayError(code: .notConnected, message: "EA \(uuid) is not connected to any gateway")
            }
            gateway = name
        } catch let error as GatewayError {
            throw error
        } catch {
            throw GatewayError(code: .transport, message: "cannot look up the gateway of \(uuid): \(error)")
        }
        let payload: String
        do {
            payload = String(decoding: try CommandEncoder.encode(command), as: UTF8.self)
        } catch {
            throw GatewayError(code: .unencodable, message: error.description)
        }
        let request = UUID().uuidString
        let expires = Date().timeIntervalSince1970 + Self.maxAge
        let entry =
            (try? JSONSerialization.data(withJSONObject: [
                "request": request, "command": payload, "uuid": uuid, "expires_at": String(expires),
            ]))
            .map { String(decoding: $0, as: UTF8.self) } ?? ""
        let outcome: String?
        do {
            _ = try await redis.command(["LPUSH", GatewayRouting.inbox(gateway), entry])
            // On a worker connection of its own: the trade client's shared connections carry every fire.
            outcome = try await redis.blockingCommand(
                ["BRPOP", GatewayRouting.reply(request), String(replyTimeout)],
                waitsUpTo: Double(replyTimeout)
            ).array?.last?.string
        } catch {
            throw GatewayError(code: .transport, message: "routing through gateway \(gateway) failed: \(error)")
        }
        guard let outcome else {
            // Still in that gateway's inbox: it is delivered once if popped within `maxAge`, dropped
            // after. Reported as handed over; the fire record times out if no confirmation comes.
            return
        }
        guard outcome == "sent" else {
            let parts = outcome.split(separator: ":", maxSplits: 1).map(String.init)
            let code = GatewayError.Code(rawValue: parts.first ?? "") ?? .transport
            throw GatewayError(code: code, message: "via gateway \(gateway): \(parts.count > 1 ? parts[1] : outcome)")
        }
    }
}
