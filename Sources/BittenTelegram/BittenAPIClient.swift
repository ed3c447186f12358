import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Bitten's own HTTP API as the Telegram front calls it (with the API token): the same fire desk, the same checks
/// and refusals as `POST /fire/{signal_id}`, wherever the trade processes run.
public struct BittenAPIClient: Sendable {
    /// The API's base URL (`http://127.0.0.1:8080`).
    public let base: String
    let token: String?
    let client: HTTPClient

    /// A client of the API at `base`, sending `token` as the bearer.
    public init(base: String, token: String?, client: HTTPClient = .shared) {
        self.base = base.hasSuffix("/") ? String(base.dropLast()) : base
        self.token = token
        self.client = client
    }

    /// An answer: the HTTP status and the JSON object (empty when the body was not one).
    public struct Answer: @unchecked Sendable {
        /// The HTTP status.
        public var status: Int
        /// The JSON object.
        public var body: [String: Any]

        /// The error's code and message of a refusal (`{"error":{"code":…,"message":…}}`).
        public var error: (code: String, message: String)? {
            guard let error = body["error"] as? [String: Any] else { return nil }
            return (error["code"] as? String ?? "error", error["message"] as? String ?? "")
        }
    }

    /// Why the API could not be asked.
    public struct Unreachable: Error, Sendable, CustomStringConvertible {
        /// What went wrong.
        public var description: String
    }

    /// `GET path`.
    public func get(_ path: String) async throws(Unreachable) -> Answer { try await call(.GET, path, body: nil) }

    /// `POST path` with a JSON body.
    public func post(_ path: String, _ body: [String: Any] = [:]) async throws(Unreachable) -> Answer {
        try await call(.POST, path, body: body)
    }

    func call(_ method: HTTPMethod, _ path: String, body: [String: Any]?) async throws(Unreachable) -> Answer {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            let data = (try? JSONSerialization.data(withJSONObject: body)) ?? Data("{}".utf8)
            request.body = .bytes(ByteBuffer(bytes: data))
        }
        do {
            let response = try await client.execute(request, timeout: .seconds(15))
            let bytes = try await response.body.collect(upTo: 4 << 20)
            let object =
                (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
            return Answer(status: Int(response.status.code), body: object)
        } catch {
            throw Unreachable(description: "Bitten's API at \(base) did not answer: \(error)")
        }
    }
}
