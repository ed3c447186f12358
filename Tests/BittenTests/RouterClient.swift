import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import Synchronization

/// Requests straight into a router's responder, in process and without a socket: what Hummingbird's own router test
/// framework does (its HummingbirdTesting product also brings AsyncHTTPClient and BoringSSL, a minute and a half of
/// every clean build, for a client these tests do not use).
struct RouterClient: Sendable {
    struct Answer: Sendable {
        var status: HTTPResponse.Status
        var headers: HTTPFields
        var body: ByteBuffer
    }

    let responder: RouterResponder<BasicRequestContext>
    let logger = Logger(label: "bitten.test")

    init(_ router: Router<BasicRequestContext>) { responder = router.buildResponder() }

    /// The router's answer to one request (a `Content-Length` is set for a body, as a client would).
    func execute(
        uri: String, method: HTTPRequest.Method, headers: HTTPFields = [:], body: ByteBuffer? = nil
    ) async throws -> Answer {
        var headers = headers
        if let body { headers[.contentLength] = String(body.readableBytes) }
        let request = Request(
            head: .init(method: method, scheme: "http", authority: "localhost", path: uri, headerFields: headers),
            body: RequestBody(buffer: body ?? ByteBuffer()))
        let context = BasicRequestContext(
            source: ApplicationRequestContextSource(channel: NIOAsyncTestingChannel(), logger: logger))
        let response = try await responder.respond(to: request, context: context)
        let collected = Collector()
        try await response.body.write(collected)
        return Answer(status: response.status, headers: response.headers, body: collected.buffer.withLock { $0 })
    }

    /// Collects a response body.
    final class Collector: ResponseBodyWriter, Sendable {
        let buffer = Mutex(ByteBuffer())
        func write(_ buffer: ByteBuffer) async throws {
            self.buffer.withLock { collected in
                var incoming = buffer
                collected.writeBuffer(&incoming)
            }
        }
        func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}
