import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The Telegram Bot API over HTTPS (`{base}/bot{token}/{method}`, JSON in, `{"ok":…,"result":…}` out): the calls the
/// Telegram front makes. Every failure is a `BotAPIError` that says whether to wait (`retry_after`), to try again
/// later (the network, the API's 5xx) or to give up (a refusal such as a chat that blocked the bot).
public struct BotAPI: Sendable {
    /// The API's base URL (`https://api.telegram.org`; a local stand-in in tests).
    public let base: String
    let token: String
    let client: HTTPClient

    /// A client of the API at `base` for the bot with `token`.
    public init(base: String, token: String, client: HTTPClient = .shared) {
        self.base = base.hasSuffix("/") ? String(base.dropLast()) : base
        self.token = token
        self.client = client
    }

    /// The updates after `offset` (long polling: the API holds the call up to `timeout` seconds when there are none).
    public func updates(offset: Int64, timeout: Int) async throws(BotAPIError) -> [BotUpdate] {
        let body = GetUpdates(offset: offset, timeout: timeout, allowedUpdates: ["message", "callback_query"])
        return try await call("getUpdates", body, timeout: .seconds(Int64(timeout) + 10))
    }

    /// Sends a text message (with inline buttons, if any).
    @discardableResult
    public func send(_ message: BotMessageOut) async throws(BotAPIError) -> BotMessage {
        try await call("sendMessage", message, timeout: .seconds(15))
    }

    /// Answers a button press (the small notice the user's client shows).
    public func answer(callback id: String, text: String) async throws(BotAPIError) {
        let _: Bool = try await call(
            "answerCallbackQuery", AnswerCallback(callbackQueryID: id, text: String(text.prefix(190))),
            timeout: .seconds(15))
    }

    /// One call: the method's JSON body posted, the `result` decoded, or the reason it failed.
    func call<Body: Encodable, Result: Decodable>(_ method: String, _ body: Body, timeout: TimeAmount)
        async throws(BotAPIError) -> Result
    {
        var request = HTTPClientRequest(url: "\(base)/bot\(token)/\(method)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        let data: Data
        do { data = try JSONEncoder().encode(body) } catch {
            throw BotAPIError(.malformed, method: method, "the request could not be encoded: \(error)")
        }
        request.body = .bytes(ByteBuffer(bytes: data))
        let status: HTTPResponseStatus
        let bytes: ByteBuffer
        do {
            let response = try await client.execute(request, timeout: timeout)
            status = response.status
            bytes = try await response.body.collect(upTo: 4 << 20)
        } catch {
            throw BotAPIError(.transport, method: method, "\(error)")
        }
        let reply: BotReply<Result>
        do { reply = try JSONDecoder().decode(BotReply<Result>.self, from: Data(bytes.readableBytesView)) } catch {
            if status.code >= 500 { throw BotAPIError(.transport, method: method, "HTTP \(status.code)") }
            throw BotAPIError(
                .malformed, method: method, "HTTP \(status.code), an answer that is not the API's: \(error)")
        }
        if reply.ok, let result = reply.result { return result }
        let code = reply.errorCode ?? Int(status.code)
        let description = reply.description ?? "HTTP \(status.code)"
        if code == 429 || reply.parameters?.retryAfter != nil {
            throw BotAPIError(
                .retryAfter(max(1, reply.parameters?.retryAfter ?? 1)), method: method, description, code: code)
        }
        if code >= 500 { throw BotAPIError(.transport, method: method, description, code: code) }
        throw BotAPIError(.refused, method: method, description, code: code)
    }
}

/// Why a call to the Bot API failed.
public struct BotAPIError: Error, Sendable, CustomStringConvertible {
    /// What the caller should do about it.
    public enum Kind: Sendable, Equatable {
        /// Too many requests: wait this many seconds before any other call.
        case retryAfter(Int)
        /// The network or the API's own failure: try again later.
        case transport
        /// The API refused the call (a bad request, a chat that blocked the bot): trying again will not help.
        case refused
        /// Not an answer of the Bot API.
        case malformed
    }

    /// What kind of failure.
    public var kind: Kind
    /// The method called.
    public var method: String
    /// The API's description, or the network's error.
    public var message: String
    /// The API's `error_code` (or the HTTP status), when it answered.
    public var code: Int?

    init(_ kind: Kind, method: String, _ message: String, code: Int? = nil) {
        self.kind = kind
        self.method = method
        self.message = message
        self.code = code
    }

    /// The method, the code and the message.
    public var description: String { "\(method): \(code.map { "\($0) " } ?? "")\(message)" }
}

/// The API's envelope.
struct BotReply<Result: Decodable>: Decodable {
    var ok: Bool
    var result: Result?
    var description: String?
    var errorCode: Int?
    var parameters: Parameters?

    struct Parameters: Decodable {
        var retryAfter: Int?
        enum CodingKeys: String, CodingKey { case retryAfter = "retry_after" }
    }

    enum CodingKeys: String, CodingKey {
        case ok, result, description, parameters
        case errorCode = "error_code"
    }
}

struct GetUpdates: Encodable {
    var offset: Int64
    var timeout: Int
    var allowedUpdates: [String]
    enum CodingKeys: String, CodingKey {
        case offset, timeout
        case allowedUpdates = "allowed_updates"
    }
}

struct AnswerCallback: Encodable {
    var callbackQueryID: String
    var text: String
    enum CodingKeys: String, CodingKey {
        case text
        case callbackQueryID = "callback_query_id"
    }
}

/// One update: a message or a button press.
public struct BotUpdate: Decodable, Sendable {
    /// The update's number (the next poll asks from this + 1).
    public var updateID: Int64
    /// A message sent to the bot.
    public var message: BotMessage?
    /// A button of the bot's pressed.
    public var callbackQuery: BotCallback?

    enum CodingKeys: String, CodingKey {
        case message
        case updateID = "update_id"
        case callbackQuery = "callback_query"
    }
}

/// A message (the fields the bot reads).
public struct BotMessage: Decodable, Sendable {
    /// The message's number in its chat.
    public var messageID: Int64
    /// Its chat.
    public var chat: BotChat
    /// Its text, if it has one.
    public var text: String?

    enum CodingKeys: String, CodingKey {
        case chat, text
        case messageID = "message_id"
    }
}

/// A chat.
public struct BotChat: Decodable, Sendable {
    /// The chat's id.
    public var id: Int64
}

/// A button press.
public struct BotCallback: Decodable, Sendable {
    /// The press's id (answered with `answerCallbackQuery`).
    public var id: String
    /// Who pressed it.
    public var from: BotChat
    /// The message that carried the button.
    public var message: BotMessage?
    /// The button's data, as the bot set it.
    public var data: String?
}

/// A message the bot sends.
public struct BotMessageOut: Encodable, Sendable, Equatable {
    /// The chat: its id, or a channel's `@name`.
    public var chatID: String
    /// The text (at most 4 096 characters; longer is cut).
    public var text: String
    /// Inline buttons, rows of (label, data).
    public var buttons: [[BotButton]]

    /// A message to `chat`.
    public init(chat: String, text: String, buttons: [[BotButton]] = []) {
        self.chatID = chat
        self.text = String(text.prefix(4_096))
        self.buttons = buttons
    }

    enum CodingKeys: String, CodingKey {
        case text
        case chatID = "chat_id"
        case replyMarkup = "reply_markup"
    }

    /// Encodes as the API wants it: a numeric chat id as a number, the buttons as `reply_markup.inline_keyboard`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if let number = Int64(chatID) {
            try container.encode(number, forKey: .chatID)
        } else {
            try container.encode(chatID, forKey: .chatID)
        }
        try container.encode(text, forKey: .text)
        if !buttons.isEmpty { try container.encode(InlineKeyboard(inlineKeyboard: buttons), forKey: .replyMarkup) }
    }

    struct InlineKeyboard: Encodable {
        var inlineKeyboard: [[BotButton]]
        enum CodingKeys: String, CodingKey { case inlineKeyboard = "inline_keyboard" }
    }
}

/// An inline button.
public struct BotButton: Encodable, Sendable, Equatable {
    /// Its label.
    public var text: String
    /// What the bot gets back when it is pressed (at most 64 bytes).
    public var callbackData: String

    /// A button labelled `text` that sends `data` back.
    public init(_ text: String, data: String) {
        self.text = text
        self.callbackData = data
    }

    enum CodingKeys: String, CodingKey {
        case text
        case callbackData = "callback_data"
    }
}
