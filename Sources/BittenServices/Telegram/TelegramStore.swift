import Foundation
import Redis

/// What the Telegram front keeps in Redis: the update offset (so that no update is handled twice after a restart),
/// the one-time link codes, each chat's user (and each user's chat), the chats that want announcements, the
/// close-all confirmations waiting for their button, and the last signal announced.
///
/// Keys: `telegram:offset` (string), `telegram:link:{CODE}` (string, the user's UUID, 15 minutes),
/// `telegram:chats` (hash chat → UUID), `telegram:users` (hash UUID → chat), `telegram:subscribers` (set of chats),
/// `telegram:confirm:{NONCE}` (string, the chat, 2 minutes), `telegram:announced` (string, the received time of the
/// last signal announced).
public struct TelegramStore: Sendable {
    /// The Redis it keeps them in.
    public let redis: RedisClient

    /// A store on `redis`.
    public init(redis: RedisClient) { self.redis = redis }

    static let offsetKey = "telegram:offset"
    static let chatsKey = "telegram:chats"
    static let usersKey = "telegram:users"
    static let subscribersKey = "telegram:subscribers"
    static let announcedKey = "telegram:announced"
    static func linkKey(_ code: String) -> String { "telegram:link:" + code }
    static func confirmKey(_ nonce: String) -> String { "telegram:confirm:" + nonce }

    /// How long a link code stays usable.
    public static let linkTTL = 900
    /// How long a close-all confirmation waits for its button.
    public static let confirmTTL = 120

    /// The next update to ask for (0: from the oldest the API keeps).
    public func offset() async throws -> Int64 {
        Int64(try await redis.command(["GET", Self.offsetKey]).string ?? "0") ?? 0
    }

    /// Moves the offset past an update (one poller: the Bot API refuses a second `getUpdates` with 409).
    public func setOffset(_ next: Int64) async throws {
        _ = try await redis.command(["SET", Self.offsetKey, String(next)]).orThrow()
    }

    /// A new one-time code that links a chat to `uuid`.
    public func makeLinkCode(for uuid: String) async throws -> String {
        for _ in 0..<5 {
            let code = LinkCode.make()
            let set = try await redis.command(["SET", Self.linkKey(code), uuid, "NX", "EX", String(Self.linkTTL)])
            if set.string == "OK" { return code }
        }
        throw RedisError(.unexpectedReply, "no free link code after 5 tries")
    }

    /// Takes a link code (once: a second use finds nothing) and links `chat` to its user, who is subscribed to
    /// announcements. A chat linked before is moved to the new user; the user's earlier chat is unlinked.
    public func link(code: String, chat: Int64) async throws -> String? {
        guard let uuid = try await redis.command(["GETDEL", Self.linkKey(code)]).orThrow().string else { return nil }
        let chatText = String(chat)
        let replies = try await redis.pipeline([
            ["HGET", Self.chatsKey, chatText], ["HGET", Self.usersKey, uuid],
        ])
        var commands: [[String]] = []
        if let earlierUser = replies[0].string, earlierUser != uuid {
            commands.append(["HDEL", Self.usersKey, earlierUser])
        }
        if let earlierChat = replies[1].string, earlierChat != chatText {
            commands.append(["HDEL", Self.chatsKey, earlierChat])
            commands.append(["SREM", Self.subscribersKey, earlierChat])
        }
        commands += [
            ["HSET", Self.chatsKey, chatText, uuid], ["HSET", Self.usersKey, uuid, chatText],
            ["SADD", Self.subscribersKey, chatText],
        ]
        for reply in try await redis.pipeline(commands) { try reply.orThrow() }
        return uuid
    }

    /// The user a chat is linked to.
    public func user(ofChat chat: Int64) async throws -> String? {
        try await redis.command(["HGET", Self.chatsKey, String(chat)]).orThrow().string
    }

    /// The chat a user is linked to.
    public func chat(ofUser uuid: String) async throws -> Int64? {
        try await redis.command(["HGET", Self.usersKey, uuid]).orThrow().string.flatMap { Int64($0) }
    }

    /// Announcements to `chat`, or not.
    public func subscribe(_ chat: Int64, _ on: Bool) async throws {
        _ = try await redis.command([on ? "SADD" : "SREM", Self.subscribersKey, String(chat)]).orThrow()
    }

    /// The chats that want announcements.
    public func subscribers() async throws -> [Int64] {
        (try await redis.command(["SMEMBERS", Self.subscribersKey]).orThrow().array ?? []).compactMap {
            $0.string.flatMap { Int64($0) }
        }.sorted()
    }

    /// A close-all waiting for `chat` to press its button; the nonce the button carries.
    public func makeConfirmation(for chat: Int64) async throws -> String {
        let nonce = String((0..<16).map { _ in LinkCode.alphabet.randomElement()! })
        _ = try await redis.command(["SET", Self.confirmKey(nonce), String(chat), "EX", String(Self.confirmTTL)])
            .orThrow()
        return nonce
    }

    /// Takes a confirmation (once), and says whether it was made for `chat`: nil when there is none (pressed before,
    /// or expired), false when another chat's (a forged button).
    public func takeConfirmation(_ nonce: String, chat: Int64) async throws -> Bool? {
        guard let owner = try await redis.command(["GET", Self.confirmKey(nonce)]).orThrow().string else { return nil }
        guard owner == String(chat) else { return false }
        return try await redis.command(["DEL", Self.confirmKey(nonce)]).orThrow().int == 1 ? true : nil
    }

    /// The received time of the last signal announced (nil: none yet).
    public func announced() async throws -> Double? {
        try await redis.command(["GET", Self.announcedKey]).orThrow().string.flatMap(Double.init)
    }

    /// Marks the signals received up to `time` as announced.
    public func setAnnounced(_ time: Double) async throws {
        _ = try await redis.command(["SET", Self.announcedKey, String(time)]).orThrow()
    }
}

/// The one-time code that links a chat to a user (`bitten user link UUID`).
public enum LinkCode {
    /// Characters in a code.
    public static let length = 8
    /// Letters and digits that cannot be mistaken for one another.
    public static let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")

    /// A new random code.
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
    }

    /// Whether `text` has a code's shape (case does not matter).
    public static func isValid(_ text: String) -> Bool {
        text.count == length && text.uppercased().allSatisfy { alphabet.contains($0) }
    }
}
