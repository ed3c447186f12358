import BittenCore
import Foundation
import Logging
import Redis
import ServiceLifecycle

/// Scale-out of the trade path: a fire or close for a user whose shard another process owns goes through
/// that shard's inbox (`inbox:{tN}`, in the shard's slot). The owner pops it (one consumer per shard, so it
/// is delivered once), performs it with its own fire desk (checks, sizing, reservation, send) and pushes
/// the outcome to `shard:reply:{request}`. A request expires when its asker stops waiting: one that waited
/// in the inbox that long (its owner was down or stalled) is dropped, not performed late; one whose outcome
/// does not come back in time is answered as unknown, and is never sent again by the asking process.
public enum ShardRouting {
    /// The inbox of a shard.
    public static func inbox(_ shard: Int) -> String { RedisKeys.shardInbox(shard) }
    /// Where the outcome of a routed request goes.
    public static func reply(_ request: String) -> String { RedisKeys.shardReply(request) }

    /// A routed fire, close or close-all.
    public struct Request: Codable, Sendable, Equatable {
        /// What the request asks.
        public enum Operation: String, Codable, Sendable {
            case fire
            case close
            case closeAll = "close_all"
            case saveUser = "save_user"
            case setTrading = "set_trading"
        }
        /// The request's id (its answer's list).
        public var request: String
        /// Fire, close, close-all or save.
        public var operation: Operation
        /// The user.
        public var userUUID: String
        /// The signal, for a fire.
        public var signalID: String?
        /// The ticket, for a close.
        public var ticket: Int?
        /// The user to save (`saveUser`).
        public var user: UserRecord?
        /// The user's new trading state (`setTrading`; its `closeAll` closes every open position).
        public var control: TradingControl?
        /// After this, the request is dropped unanswered (the caller has given up).
        public var expiresAt: Double
    }

    /// What the owner made of it: the records, or the refusal.
    public struct Outcome: Codable, Sendable {
        /// The records made, when done.
        public var records: [FireRecord]?
        /// The refusal's code, when refused.
        public var code: String?
        /// The refusal's message, when refused.
        public var message: String?

        /// Done, with these records.
        public init(records: [FireRecord]) { self.records = records }
        /// Refused.
        public init(refusal: FireRefusal) {
            code = refusal.code.rawValue
            message = refusal.message
        }

        /// The records, or the refusal thrown.
        func result() throws(FireRefusal) -> [FireRecord] {
            if let records { return records }
            throw FireRefusal(
                code.flatMap(FireRefusal.Code.init(rawValue:)) ?? .storeUnavailable,
                message ?? "refused by the shard's owner")
        }
    }
}

/// The asking side: finds the process that owns a shard (its lease) and routes a request to it.
public final class ShardRouter: Sendable {
    private let redis: RedisClient
    private let instance: String
    private let shards: Int
    private let replyTimeout: Int

    /// `redis`: a client whose blocking workers may wait `replyTimeout` seconds for each outcome.
    public init(redis: RedisClient, instance: String, shards: Int, replyTimeout: Int = 5) {
        self.redis = redis
        self.instance = instance
        self.shards = max(1, shards)
        self.replyTimeout = replyTimeout
    }

    /// The instance holding `shard`'s lease, when another one does.
    func otherOwner(of shard: Int) async -> String? {
        guard let holder = try? await redis.command(["GET", ShardKeys(shard: shard).lease]).string else { return nil }
        let owner = String(holder.prefix { $0 != "/" })
        return owner.isEmpty || owner == instance ? nil : owner
    }

    /// The shard and user of an open position in a shard this process does not own (`owned`).
    func locate(ticket: Int, owned: Set<Int>) async -> (shard: Int, uuid: String)? {
        let candidates = (0..<shards).filter { !owned.contains($0) }
        guard !candidates.isEmpty,
            let replies = try? await redis.pipeline(
                candidates.map { ["HMGET", ShardKeys(shard: $0).position(ticket), "status", "user_uuid"] })
        else { return nil }
        for (shard, reply) in zip(candidates, replies) {
            let fields = reply.array ?? []
            if fields.count == 2, fields[0].string == "open", let uuid = fields[1].string { return (shard, uuid) }
        }
        return nil
    }

    /// Sends a request to the owner of `shard` and waits for its outcome; nil when no other process owns
    /// the shard (the caller answers as it would without routing).
    func route(
        _ operation: ShardRouting.Request.Operation, shard: Int, userUUID: String, signalID: String? = nil,
        ticket: Int? = nil, user: UserRecord? = nil, control: TradingControl? = nil
    ) async throws(FireRefusal) -> [FireRecord]? {
        guard let owner = await otherOwner(of: shard) else { return nil }
        let request = ShardRouting.Request(
            request: UUID().uuidString, operation: operation, userUUID: userUUID, signalID: signalID,
            ticket: ticket, user: user, control: control, expiresAt: Date().timeIntervalSince1970 + Double(replyTimeout)
        )
        let reply: String?
        do {
            let entry = String(decoding: try JSONEncoder().encode(request), as: UTF8.self)
            _ = try await redis.command(["LPUSH", ShardRouting.inbox(shard), entry])
            reply = try await redis.blockingCommand(
                ["BRPOP", ShardRouting.reply(request.request), String(replyTimeout)],
                waitsUpTo: Double(replyTimeout)
            ).array?.last?.string
        } catch {
            throw FireRefusal(
                .storeUnavailable, "routing to \(owner), the owner of trade shard \(shard), failed: \(error)")
        }
        guard let reply else {
            throw FireRefusal(
                .storeUnavailable,
                "routed to \(owner), the owner of trade shard \(shard); no answer within \(replyTimeout) s. It is not sent again from here: look the fire up before firing again"
            )
        }
        guard let outcome = try? JSONDecoder().decode(ShardRouting.Outcome.self, from: Data(reply.utf8)) else {
            throw FireRefusal(.storeUnavailable, "the owner of trade shard \(shard) answered something unreadable")
        }
        return try outcome.result()
    }
}

/// The owning side: pops the inboxes of the shards this process owns and performs each request once.
public final class ShardInbox: Service, Sendable {
    /// The name on the services board.
    public static let name = "trade_inbox"
    private let desk: FireDesk
    private let store: TradeStore
    private let engine: TradeEngine
    private let redis: RedisClient
    private let board: ServiceBoard
    private let logger: Logger
    private let errors: SwallowedErrors
    private let now: @Sendable () -> Double

    /// `redis` should be a client of its own: the pop blocks a connection for up to a second.
    public init(
        desk: FireDesk, store: TradeStore, engine: TradeEngine, redis: RedisClient, board: ServiceBoard, logger: Logger,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.desk = desk
        self.store = store
        self.engine = engine
        self.redis = redis
        self.board = board
        self.logger = logger
        self.now = now
        self.errors = SwallowedErrors(logger: logger)
        board.register(Self.name)
    }

    /// Serves the inboxes of the shards owned here until shutdown.
    public func run() async throws {
        board.set(Self.name, .running)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let inboxes = engine.ownedShardIndices.map(ShardRouting.inbox)
            guard !inboxes.isEmpty else {
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            var popped: [String] = []
            do {
                if redis.isCluster {
                    // One slot per shard, so no pop across them: one RPOP per inbox in a pipeline, every 100 ms
                    // while they are empty.
                    popped = try await redis.pipeline(inboxes.map { ["RPOP", $0] }).compactMap(\.string)
                    if popped.isEmpty { try? await Task.sleep(for: .milliseconds(100)) }
                } else {
                    popped =
                        try await redis.blockingCommand(["BRPOP"] + inboxes + ["1"], waitsUpTo: 1).array?.last?.string
                        .map { [$0] } ?? []
                }
            } catch {
                errors.note("trade_inbox_pop", error, "")
                try? await Task.sleep(for: .milliseconds(500))
                continue
            }
            for entry in popped { await handle(entry) }
        }
        board.set(Self.name, .stopped)
    }

    /// A routed user save, with the user it carries.
    private func save(_ request: ShardRouting.Request) async throws(FireRefusal) {
        guard let user = request.user, user.uuid == request.userUUID, UserID.isValid(user.uuid) else {
            throw FireRefusal(.badRequest, "a routed user save without a valid user")
        }
        do {
            try await store.save(user, routing: false)
        } catch {
            throw FireRefusal(.storeUnavailable, "\(error)")
        }
    }

    /// A routed trading state, with the state it carries.
    private func setTrading(_ request: ShardRouting.Request) async throws(FireRefusal) -> [FireRecord] {
        guard let control = request.control else {
            throw FireRefusal(.badRequest, "a routed trading state without one")
        }
        return try await desk.setTrading(userUUID: request.userUUID, control: control, routing: false)
    }

    /// Bytes an inbox entry may have (a routed request is a few hundred).
    static let maxEntryBytes = 16_384

    func handle(_ text: String) async {
        guard text.utf8.count <= Self.maxEntryBytes else {
            logger.warning(
                "oversized trade inbox entry dropped",
                metadata: ["bitten.bytes": "\(text.utf8.count)", "bitten.inbox.entry": "\(text.prefix(200))"])
            board.count(Self.name, errors: 1)
            return
        }
        let request: ShardRouting.Request
        do {
            request = try JSONDecoder().decode(ShardRouting.Request.self, from: Data(text.utf8))
        } catch {
            logger.warning(
                "malformed trade inbox entry dropped",
                metadata: ["bitten.inbox.entry": "\(text.prefix(200))", "bitten.error": "\(error)"])
            board.count(Self.name, errors: 1)
            return
        }
        let outcome: ShardRouting.Outcome
        if now() > request.expiresAt {
            // Its asker has given up: not performed late.
            logger.warning(
                "routed trade request expired in the inbox", metadata: ["bitten.inbox.request": "\(request.request)"])
            outcome = ShardRouting.Outcome(
                refusal: FireRefusal(.storeUnavailable, "expired in the inbox of the shard's owner"))
        } else {
            do {
                switch request.operation {
                case .fire:
                    outcome = ShardRouting.Outcome(records: [
                        try await desk.fire(
                            signalID: request.signalID ?? "", userUUID: request.userUUID, routing: false)
                    ])
                case .close:
                    outcome = ShardRouting.Outcome(records: [
                        try await desk.close(ticket: request.ticket ?? 0, routing: false)
                    ])
                case .closeAll:
                    outcome = ShardRouting.Outcome(
                        records: try await desk.closeAll(userUUID: request.userUUID, routing: false))
                case .saveUser:
                    try await save(request)
                    outcome = ShardRouting.Outcome(records: [])
                case .setTrading:
                    outcome = ShardRouting.Outcome(records: try await setTrading(request))
                }
                board.count(Self.name, in: 1, out: 1)
            } catch {
                outcome = ShardRouting.Outcome(refusal: error)
                board.count(Self.name, in: 1)
            }
        }
        await errors.attempt("trade_routed_reply", request.request) {
            let text = String(decoding: try JSONEncoder().encode(outcome), as: UTF8.self)
            _ = try await redis.pipeline([
                ["LPUSH", ShardRouting.reply(request.request), text],
                ["EXPIRE", ShardRouting.reply(request.request), "60"],
            ])
        }
    }
}
