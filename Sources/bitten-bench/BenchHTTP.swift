import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Keep-alive HTTP/1.1 connections for the benchmarks, on SwiftNIO's HTTP/1 codec (already in the
/// build through Hummingbird). URLSession on Linux goes through libcurl and cost the shared 2 cores
/// more than the server it was measuring; this client costs a few tens of microseconds a request.
struct BenchHTTP {
    typealias Connection = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>

    let host: String
    let port: Int

    /// Opens one connection.
    func connect() async throws -> Connection {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try Connection(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// Runs `jobs` requests over `connections` keep-alive connections. `request(i)` gives the i-th
    /// request's path and body and when it is due (epoch seconds); each result carries the moment
    /// the request was written, the status and the body.
    func run(
        jobs: Int, connections: Int, method: HTTPMethod = .POST,
        request: @escaping @Sendable (Int) -> (path: String, body: String, due: Double)
    )
        async throws -> [(index: Int, sentAt: Double, status: Int, body: [UInt8])]
    {
        let next = JobCounter()
        let host = self.host
        return try await withThrowingTaskGroup(of: [(index: Int, sentAt: Double, status: Int, body: [UInt8])].self) {
            group in
            for _ in 0..<max(1, connections) {
                let channel = try await connect()
                group.addTask {
                    try await channel.executeThenClose { inbound, outbound in
                        var responses = inbound.makeAsyncIterator()
                        var results: [(index: Int, sentAt: Double, status: Int, body: [UInt8])] = []
                        while true {
                            let index = next.value.add(1, ordering: .relaxed).oldValue
                            guard index < jobs else { break }
                            let job = request(index)
                            let wait = job.due - Date().timeIntervalSince1970
                            if wait > 0 { try await Task.sleep(for: .microseconds(Int64(wait * 1_000_000))) }
                            var head = HTTPRequestHead(version: .http1_1, method: method, uri: job.path)
                            head.headers.add(name: "Host", value: host)
                            head.headers.add(name: "Content-Type", value: "application/json")
                            head.headers.add(name: "Content-Length", value: String(job.body.utf8.count))
                            let sentAt = Date().timeIntervalSince1970
                            try await outbound.write(contentsOf: [
                                .head(head), .body(.byteBuffer(ByteBuffer(string: job.body))), .end(nil),
                            ])
                            var status = 0
                            var body: [UInt8] = []
                            reading: while let part = try await responses.next() {
                                switch part {
                                case .head(let response): status = Int(response.status.code)
                                case .body(let buffer): body += buffer.readableBytesView
                                case .end: break reading
                                }
                            }
                            results.append((index, sentAt, status, body))
                        }
                        return results
                    }
                }
            }
            var all: [(index: Int, sentAt: Double, status: Int, body: [UInt8])] = []
            for try await part in group { all += part }
            return all
        }
    }

    /// One GET on a fresh connection.
    func get(_ path: String) async throws -> (status: Int, body: [UInt8]) {
        let result = try await run(jobs: 1, connections: 1, method: .GET) { _ in (path, "", 0) }
        return (result.first?.status ?? 0, result.first?.body ?? [])
    }

    /// One request on a fresh connection.
    func post(_ path: String, _ body: String) async throws -> (status: Int, body: [UInt8]) {
        let result = try await run(jobs: 1, connections: 1) { _ in (path, body, 0) }
        return (result.first?.status ?? 0, result.first?.body ?? [])
    }
}

/// The next job index, shared by the connections.
private final class JobCounter: Sendable {
    let value = Atomic<Int>(0)
}
