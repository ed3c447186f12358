import ArgumentParser
import Foundation
import ZeroMQ

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

extension Bench {
    /// `bitten-bench dashboard`: API latency with many registered nodes, and the server CPU the live
    /// stream costs with N dashboards open.
    struct Dashboard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "/nodes first page and /health p99 with N nodes; server CPU with 20 live dashboards (SSE) open.")

        @Option(help: "Nodes registered.") var nodes = 10_000
        @Option(help: "Requests per endpoint.") var requests = 500
        @Option(help: "Live dashboards (SSE streams) open.") var dashboards = 20
        @Option(help: "Seconds the CPU is measured, with and without the dashboards.") var seconds = 20

        func run() async throws {
            let server = try ServerUnderTest.start()
            defer { server.stop() }
            print("server: pid \(server.pid), data \(server.dataDir)")
            try register(server)
            let base = "http://127.0.0.1:\(server.port("BITTEN_HTTP_PORT"))"
            for path in ["/nodes", "/nodes?offset=950&limit=50&sort=balance&order=desc", "/health", "/snapshot"] {
                let samples = try await latencies(base + path)
                print(
                    String(
                        format: "GET %@ with %d nodes: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d requests)",
                        path, nodes, samples.p50, samples.p99, samples.max, requests))
            }
            // CPU: the same span idle, then with the dashboards' streams open (each reads every event).
            let idleStart = server.cpuSeconds()
            try await Task.sleep(for: .seconds(seconds))
            let idle = (server.cpuSeconds() - idleStart) / Double(seconds) * 100
            let port = server.port("BITTEN_HTTP_PORT")
            let readers = (0..<dashboards).map { _ in SSEReader(port: port) }
            for reader in readers { reader.start() }
            try await Task.sleep(for: .seconds(2))
            let liveStart = server.cpuSeconds()
            let eventsBefore = readers.reduce(0) { $0 + $1.events }
            try await Task.sleep(for: .seconds(seconds))
            let live = (server.cpuSeconds() - liveStart) / Double(seconds) * 100
            let events = readers.reduce(0) { $0 + $1.events } - eventsBefore
            for reader in readers { reader.stop() }
            print(
                String(
                    format:
                        "live stream: %d dashboards open received %d snapshot events in %d s; server CPU %.1f%% of a core with them, %.1f%% without (difference %.1f points)",
                    dashboards, events, seconds, live, idle, live - idle))
        }

        func register(_ server: ServerUnderTest) throws {
            let context = try Context()
            let push = try Socket(context: context, type: .push)
            try push.setLinger(.seconds(10))
            try push.connect("tcp://127.0.0.1:\(server.port("BITTEN_MARKET_PORT"))")
            for i in 0..<nodes {
                try push.send(
                    #"{"type":"handshake","deployment_mode":"universal_dealer","node_id":"NODE_\#(80_000_000 + i)_1","user_uuid":"user_dash_\#(i)","account":\#(80_000_000 + i),"broker":"Bench Broker \#(i % 20)","server":"Bench-\#(i % 20)","chart_symbol":"EURUSD","monitored_symbols":1,"symbol_list":"EURUSD","currency":"USD","balance":\#(1000 + i % 5000),"equity":\#(1000 + i % 5000),"leverage":500,"version":"2.05","socket_type":"DEALER","timestamp":"2026.11.25 13:00:00"}"#
                )
            }
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline, server.nodesTotalBlocking() < nodes { Thread.sleep(forTimeInterval: 0.5) }
            print("registered \(server.nodesTotalBlocking()) nodes")
            push.close()
        }

        func latencies(_ url: String) async throws -> (p50: Double, p99: Double, max: Double) {
            guard let target = URL(string: url) else { throw ValidationError("bad URL \(url)") }
            let session = URLSession(configuration: .ephemeral)
            for _ in 0..<20 { _ = try await session.data(from: target) }
            var samples: [Double] = []
            for _ in 0..<requests {
                let start = ContinuousClock.now
                let (_, response) = try await session.data(from: target)
                samples.append((ContinuousClock.now - start) / .microseconds(1) / 1000)
                guard (response as? HTTPURLResponse)?.statusCode == 200 else {
                    throw ValidationError("\(url) answered \(response)")
                }
            }
            samples.sort()
            return (
                samples[samples.count / 2], samples[min(samples.count - 1, Int(Double(samples.count) * 0.99))],
                samples.last ?? 0
            )
        }
    }
}

/// One dashboard's `/events` stream read on its own thread over a plain socket; counts events.
final class SSEReader: @unchecked Sendable {
    let port: Int
    private let lock = NSLock()
    private var count = 0
    private var running = true
    private var fd: Int32 = -1

    init(port: Int) { self.port = port }

    var events: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }

    func start() {
        let thread = Thread { [self] in self.read() }
        thread.start()
    }

    func stop() {
        lock.lock()
        running = false
        let descriptor = fd
        lock.unlock()
        if descriptor >= 0 { shutdown(descriptor, Int32(SHUT_RDWR)) }
    }

    private func read() {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        lock.lock()
        fd = descriptor
        lock.unlock()
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard ok == 0 else { return }
        let request = "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
        _ = request.withCString { send(descriptor, $0, strlen($0), 0) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var carry = ""
        while true {
            lock.lock()
            let go = running
            lock.unlock()
            guard go else { return }
            let n = recv(descriptor, &buffer, buffer.count, 0)
            if n <= 0 { return }
            carry += String(decoding: buffer[0..<n], as: UTF8.self)
            var found = 0
            while let range = carry.range(of: "event: snapshot\n") {
                found += 1
                carry = String(carry[range.upperBound...])
            }
            if found > 0 {
                lock.lock()
                count += found
                lock.unlock()
            }
            if carry.count > 1 << 20 { carry = String(carry.suffix(64)) }
        }
    }
}
