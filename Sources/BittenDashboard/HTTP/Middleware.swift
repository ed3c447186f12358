import BittenCore
import BittenServices
import Foundation
import Hummingbird
import OpenAPIRuntime
import Redis

/// Turns every error into the JSON shape: the handlers' `APIError`s as they are; a request the generated code
/// refused (a parameter or body that does not match the document) as a 400 that says what was wrong; an unknown
/// route as a 404; a store that is down as a 503; anything else as a logged 500.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as ServerError {
            // No decoded input: the generated code refused the request before any handler ran.
            if error.operationInput == nil && !(error.underlyingError is APIError) {
                // `bad_parameter` for a parameter of the wrong type or outside its enum (a request without a body),
                // `bad_field` for a body field (JSONBodyMiddleware has checked the body is a JSON object),
                // `bad_request` for the rest (a missing body…).
                var code = "bad_request"
                if error.underlyingError is DecodingError {
                    code = error.requestBody == nil ? "bad_parameter" : "bad_field"
                }
                throw APIError(
                    .badRequest, code: code,
                    "the request does not match the API document: " + Self.reason(error.underlyingError))
            }
            throw Self.mapped(error.underlyingError, request, context)
        } catch {
            throw Self.mapped(error, request, context)
        }
    }

    private static func mapped(_ error: any Error, _ request: Request, _ context: Context) -> APIError {
        switch error {
        case let error as APIError: return error
        case let error as HTTPError:
            let code = error.status == .notFound ? "not_found" : "http_\(error.status.code)"
            let message =
                error.status == .notFound
                ? "no route for \(request.method) \(request.uri.path)" : (error.body ?? error.status.reasonPhrase)
            return APIError(error.status, code: code, message)
        case let error as TradeEngineUnavailable:
            return APIError(.serviceUnavailable, code: "store_unavailable", error.message)
        case let error as RedisError where error.isConnectionProblem || error.code == .closed:
            return APIError(.serviceUnavailable, code: "store_unavailable", "Redis unavailable: \(error.message)")
        default:
            context.logger.error(
                "request failed",
                metadata: ["bitten.http.error": "\(error)", "bitten.http.path": "\(request.uri.path)"])
            // The client gets the error's type only (its text may hold internals); a contract violation is a server
            // bug whose text names the field that broke it.
            let detail = (error as? Contract.Violation).map(\.description) ?? "\(type(of: error))"
            return APIError(.internalServerError, code: "internal", "internal error: \(detail)")
        }
    }

    /// What the runtime found wrong, in one line.
    private static func reason(_ error: any Error) -> String {
        if let decoding = error as? DecodingError { return decoding.briefly.trimmingCharacters(in: [":", " "]) }
        return "\(error)"
    }
}

/// Who may call what: with a token configured, every POST and PUT needs `Authorization: Bearer <token>`; with
/// `protectReads`, every other call too (the header, or `access_token` in the query: a browser's EventSource cannot
/// set headers), but `/health` and the page's style and script, which hold no data.
struct AccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?
    let protectReads: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard let token, !token.isEmpty else { return try await next(request, context) }
        let mutating = request.method != .get && request.method != .head
        if mutating {
            guard BearerToken.matches(request.headers[.authorization] ?? "", token) else {
                throw APIError(
                    .unauthorized, code: "unauthorized", "this call needs Authorization: Bearer <BITTEN_API_TOKEN>")
            }
        } else if protectReads {
            switch request.uri.path {
            case "/health", "/dashboard.css", "/dashboard.js": return try await next(request, context)
            default: break
            }
            let header = request.headers[.authorization] ?? ""
            let query = request.uri.queryParameters["access_token"].map { "Bearer " + String($0) } ?? ""
            guard BearerToken.matches(header, token) || BearerToken.matches(query, token) else {
                throw APIError(
                    .unauthorized, code: "unauthorized",
                    "this server protects reads: send Authorization: Bearer <BITTEN_API_TOKEN> (or ?access_token=)")
            }
        }
        return try await next(request, context)
    }
}

/// Request bodies: JSON only (415), at most `maxBytes` (413), a well-formed UTF-8 JSON object (400). The body is
/// collected here, before the generated code decodes it, so no handler reads an unbounded body.
struct JSONBodyMiddleware<Context: RequestContext>: RouterMiddleware {
    var maxBytes = 64 * 1024

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard request.method == .post || request.method == .put || request.method == .patch else {
            return try await next(request, context)
        }
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", "send application/json, not \(type)")
        }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maxBytes)
        } catch {
            throw APIError(.contentTooLarge, code: "body_too_large", "request body exceeds \(maxBytes) bytes")
        }
        // Every body of this API is a JSON object: checked here with the project's strict parser (text that is not
        // UTF-8, duplicate keys, non-finite numbers and trailing data refused, the reason named), so the generated
        // decoder sees well-formed JSON only and its refusals are about fields.
        if body.readableBytes > 0 {
            do {
                _ = try JSONParser.parseFields(Array(body.readableBytesView), maxBytes: maxBytes)
            } catch {
                throw APIError(.badRequest, code: "bad_json", "the body is not a JSON object: \(error.description)")
            }
        }
        return try await next(request, context)
    }
}

/// `Cache-Control: no-cache` on every answer: everything the API says is live state.
struct NoCacheMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        var response = try await next(request, context)
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-cache" }
        return response
    }
}
