import BittenServices
import Foundation
import Hummingbird
import Redis

/// An API error rendered as `{"error":{"code":…,"message":…}}`.
public struct APIError: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String

    public init(_ status: HTTPResponse.Status, code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try JSONEncoder().encode(["error": ["code": code, "message": message]])
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Turns every other error (unknown route, body too large, internal failure) into the JSON shape.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            let code = error.status == .notFound ? "not_found" : "http_\(error.status.code)"
            let message =
                error.status == .notFound
                ? "no route for \(request.method) \(request.uri.path)"
                : (error.body ?? error.status.reasonPhrase)
            throw APIError(error.status, code: code, message)
        } catch let error as TradeEngineUnavailable {
            throw APIError(.serviceUnavailable, code: "store_unavailable", error.message)
        } catch let error as RedisError where error.isConnectionProblem || error.code == .closed {
            throw APIError(.serviceUnavailable, code: "store_unavailable", "Redis unavailable: \(error.message)")
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            throw APIError(.internalServerError, code: "internal", "internal error: \(type(of: error))")
        }
    }
}

func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    let data = try encoder.encode(value)
    return Response(
        status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// With `BITTEN_PROTECT_READS`, every call but `/health` and the page's style and script needs the API token: the `Authorization:
/// Bearer` header, or `access_token` in the query (a browser's EventSource cannot set headers).
struct ReadTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        // Health for probes; the page's style and script hold no data (the page itself and its calls need the token).
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
        return try await next(request, context)
    }
}
