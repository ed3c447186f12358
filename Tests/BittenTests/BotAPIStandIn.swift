import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// A local stand-in of the Telegram Bot API on a free loopback port: it records every call (method, JSON body, when),
/// hands out the updates a test queues (long polling: a poll with none waits for one, up to a second), answers
/// `sendMessage` with a message, and fails the calls a test asks it to (a 429 with `retry_after`, a 500).
final class BotAPIStandIn: Sendable {
    struct Call: @unchecked Sendable {
        var method: String
        var body: [String: Any]
        var at: Date
    }

    struct State: @unchecked Sendable {
        var calls: [Call] = []
        var updates: [[String: Any]] = []
        var nextUpdateID: Int64 = 100
        var nextMessageID = 1
        /// Failures to give, per method, in order: (HTTP status, retry_after).
        var failures: [String: [(status: Int, retryAfter: Int?)]] = [:]
    }

    /// What the handlers share with the test.
    final class Shared: Sendable {
        let state = Mutex(State())
        let port = Mutex<Int?>(nil)
    }

    let shared = Shared()
    let server: Task<Void, any Error>

    init() async throws {
        let shared = self.shared
        let router = Router()
        router.post("/:bot/:method") { request, context -> Response in
            let method = context.parameters.get("method") ?? ""
            let bytes = try await request.body.collect(upTo: 1 << 20)
            let body = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
            let failure = shared.state.withLock { s -> (status: Int, retryAfter: Int?)? in
                s.calls.append(Call(method: method, body: body, at: Date()))
                guard var list = s.failures[method], !list.isEmpty else { return nil }
                let first = list.removeFirst()
                s.failures[method] = list
                return first
            }
            if let failure {
                var reply: [String: Any] = [
                    "ok": false, "error_code": failure.status, "description": "stand-in failure \(failure.status)",
                ]
                if let after = failure.retryAfter { reply["parameters"] = ["retry_after": after] }
                return Self.json(reply, status: .init(code: failure.status))
            }
            switch method {
            case "getUpdates":
                let offset = (body["offset"] as? NSNumber)?.int64Value ?? 0
                for _ in 0..<20 {
                    // Every update is kept (the real API forgets those confirmed): a client that asked from an old
                    // offset would get them again, so "not handled twice" rests on the offset the client keeps.
                    let ready = shared.state.withLock { s in
                        s.updates.filter { (($0["update_id"] as? Int64) ?? 0) >= offset }
                    }
                    if !ready.isEmpty { return Self.json(["ok": true, "result": ready]) }
                    try await Task.sleep(for: .milliseconds(50))
                }
                return Self.json(["ok": true, "result": [Any]()])
            case "sendMessage":
                let id = shared.state.withLock { s -> Int in
                    defer { s.nextMessageID += 1 }
                    return s.nextMessageID
                }
                let chat = (body["chat_id"] as? NSNumber)?.int64Value ?? 0
                return Self.json([
                    "ok": true,
                    "result": ["message_id": id, "chat": ["id": chat], "text": body["text"] as? String ?? ""],
                ])
            default:
                return Self.json(["ok": true, "result": true])
            }
        }
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in shared.port.withLock { $0 = channel.localAddress?.port } })
        server = Task { try await app.runService() }
        for _ in 0..<100 where shared.port.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(20)) }
    }

    /// The base URL (`BITTEN_TELEGRAM_API`).
    var base: String { "http://127.0.0.1:\(shared.port.withLock { $0 } ?? 0)" }

    func stop() { server.cancel() }

    static func json(_ object: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Queues a text message from `chat` (a private chat: the user's id is the chat's).
    @discardableResult
    func message(from chat: Int64, _ text: String) -> Int64 {
        queue { id in
            [
                "message": [
                    "message_id": Int(id), "chat": ["id": chat, "type": "private"], "from": ["id": chat],
                    "text": text,
                ]
            ]
        }
    }

    /// Queues a button press by `user` on a message in `chat`.
    func press(by user: Int64, in chat: Int64, data: String) {
        queue { id in
            [
                "callback_query": [
                    "id": "cb\(id)", "from": ["id": user], "data": data,
                    "message": ["message_id": 1, "chat": ["id": chat]],
                ]
            ]
        }
    }

    /// Queues an update made of its number; returns the number.
    @discardableResult
    func queue(_ make: (Int64) -> [String: Any]) -> Int64 {
        shared.state.withLock { s in
            let id = s.nextUpdateID
            s.nextUpdateID += 1
            s.updates.append(make(id).merging(["update_id": id]) { $1 })
            return id
        }
    }

    /// The texts the bot answered button presses with, in order.
    var answers: [String] {
        calls.filter { $0.method == "answerCallbackQuery" }.compactMap { $0.body["text"] as? String }
    }

    /// Fails the next `count` calls of `method`.
    func fail(_ method: String, count: Int, status: Int, retryAfter: Int? = nil) {
        shared.state.withLock { s in
            s.failures[method, default: []] += Array(repeating: (status, retryAfter), count: count)
        }
    }

    var calls: [Call] { shared.state.withLock { $0.calls } }

    /// The texts sent to `chat`, in order.
    func texts(to chat: Int64) -> [String] {
        calls.filter {
            $0.method == "sendMessage" && ($0.body["chat_id"] as? NSNumber)?.int64Value == chat
        }.compactMap { $0.body["text"] as? String }
    }

    /// The buttons' data of the messages sent to `chat` (or to `@channel`).
    func buttons(to chat: String) -> [String] {
        calls.filter {
            $0.method == "sendMessage" && "\($0.body["chat_id"] ?? "")" == chat
        }.flatMap { call -> [String] in
            let markup = call.body["reply_markup"] as? [String: Any]
            let rows = markup?["inline_keyboard"] as? [[[String: Any]]] ?? []
            return rows.flatMap { $0.compactMap { $0["callback_data"] as? String } }
        }
    }
}
