import Foundation
import HTTPTypes
import Hummingbird
import OpenAPIHummingbird
import OpenAPIRuntime
import Synchronization

/// The operations the generated code registered (method and path template), to answer a method a path does not
/// declare with 405 and its `Allow` header (the router alone answers 404).
final class RouteTable: Sendable {
    private let routes = Mutex<[(segments: [Substring], method: HTTPRequest.Method)]>([])

    func add(_ method: HTTPRequest.Method, _ path: String) {
        let segments = path.split(separator: "/")
        routes.withLock { $0.append((segments, method)) }
    }

    /// The methods declared for `path`, sorted (empty when no template matches it).
    func methods(for path: String) -> [String] {
        let parts = path.split(separator: "/")
        let matching = routes.withLock { routes in
            routes.filter { route in
                route.segments.count == parts.count
                    && zip(route.segments, parts).allSatisfy { template, part in
                        template.hasPrefix("{") || template.hasPrefix(":") || template == part
                    }
            }
        }
        return Set(matching.map(\.method.rawValue)).sorted()
    }
}

/// Registers the generated handlers on a router group and records them in a `RouteTable`.
///
/// A request that carries no body (`Content-Length: 0`, or neither a length nor chunks) reaches the generated code
/// with no body at all, so an optional body (`POST /fire/{id}?user=`) is absent, not an empty JSON document.
struct RecordingTransport<Transport: ServerTransport>: ServerTransport {
    let transport: Transport
    let table: RouteTable

    func register(
        _ handler:
            @Sendable @escaping (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (
                HTTPResponse, HTTPBody?
            ), method: HTTPRequest.Method, path: String
    ) throws {
        table.add(method, path)
        try transport.register(
            { request, body, metadata in
                let length = request.headerFields[.contentLength]
                let empty = length == "0" || (length == nil && request.headerFields[.transferEncoding] == nil)
                return try await handler(request, empty ? nil : body, metadata)
            }, method: method, path: path)
    }
}

/// A 404 for a path that exists with other methods becomes 405 with `Allow`.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    let table: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = table.methods(for: request.uri.path)
            guard !allowed.isEmpty, !allowed.contains(request.method.rawValue) else { throw error }
            var refusal = APIError(
                .methodNotAllowed, code: "method_not_allowed",
                "\(request.uri.path) takes \(allowed.joined(separator: ", ")), not \(request.method)")
            refusal.headers[.allow] = allowed.joined(separator: ", ")
            throw refusal
        }
    }
}
