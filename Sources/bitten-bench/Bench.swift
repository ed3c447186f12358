import ArgumentParser
import CZeroMQ
import Foundation
import Logging
import Redis
import ZeroMQ

/// Free loopback ports for the benchmark's child server.
enum LocalRedisServerPort {
    static func next() -> Int { LocalRedisServer.freeLoopbackPort() }
}

/// `bitten-bench`: throughput figures that later work is compared with. Each benchmark that needs a server
/// starts the `bitten` executable built beside this one (`bitten up`) and measures it from outside.
@main
struct Bench: AsyncParsableCommand {
    /// The `p` percentile of `values` by nearest rank (NaN when there are none): one definition for every bench.
    static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, max(0, Int((Double(sorted.count) * p).rounded(.up)) - 1))]
    }

    /// The middle value of `values` (the mean of the two middle ones for an even count; 0 for none): the figure a
    /// bench's rounds are summed up by.
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    static let configuration = CommandConfiguration(
        commandName: "bitten-bench",
        abstract: "Bitten's benchmarks (numbers live here, not in tests).",
        subcommands: [
            Transport.self, Lifecycle.self, Trade.self, Writes.self, FireLatency.self, Citadel.self, Dashboard.self,
        ])

    struct Transport: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "ZeroMQ PUSH→PULL and Redis pipelined HSET, wrapper vs. plain libzmq / redis-benchmark.")

        @Option(help: "Messages for the ZeroMQ runs.") var messages = 1_000_000
        @Option(help: "Message size in bytes.") var size = 200
        @Option(help: "HSET operations for the Redis runs.") var redisOps = 500_000
        @Option(help: "Pipeline depth (the same for the wrapper and redis-benchmark -P).") var pipeline = 32
        @Option(help: "Redis URL to use (default: start a throw-away redis-server).") var redisURL: String?
        @Option(help: "Single commands for the async client's round-trip and concurrency runs.") var calls = 200_000
        @Option(help: "Concurrent async callers.") var callers = 64

        func run() async throws {
            let payload = [UInt8](repeating: 0x41, count: size)
            let plain = try plainZeroMQ(count: messages, payload: payload)
            let wrapped = try await wrapperZeroMQ(count: messages, payload: payload)
            print(String(format: "zeromq push->pull  plain libzmq : %10.0f msg/s", plain))
            print(
                String(
                    format: "zeromq push->pull  wrapper      : %10.0f msg/s  (%.0f%% of plain)", wrapped,
                    wrapped / plain * 100))

            var server: LocalRedisServer?
            let url: RedisURL
            if let redisURL {
                url = try RedisURL(parsing: redisURL)
            } else {
                let dir = NSTemporaryDirectory() + "bitten-bench-\(getpid())"
                server = try LocalRedisServer(
                    port: LocalRedisServer.freeLoopbackPort(), directory: dir, appendOnly: false)
                url = server!.url
            }
            defer { server?.stop() }
            let ours = try redisWrapper(url: url, ops: redisOps, depth: pipeline)
            print(String(format: "redis hset pipelined (P=%d) wrapper        : %10.0f ops/s", pipeline, ours))
            if let theirs = redisBenchmark(url: url, ops: redisOps, depth: pipeline) {
                print(
                    String(
                        format: "redis hset pipelined (P=%d) redis-benchmark: %10.0f ops/s  (wrapper = %.0f%%)",
                        pipeline, theirs, ours / theirs * 100))
            } else {
                print("redis-benchmark not found on PATH: no reference figure")
            }
            try await asyncClient(url: url)
        }

        /// The services' client (`RedisClient`, shared non-blocking connections): one caller's round trip,
        /// then many callers at once, beside redis-benchmark in the same run.
        func asyncClient(url: RedisURL) async throws {
            let client = RedisClient(url: url, logger: Logger(label: "bitten.test"))
            defer { client.shutdown() }
            try await client.command(["SET", "bench:key", "x"])
            let clock = ContinuousClock()
            let rounds = min(calls, 50_000)
            var samples: [Duration] = []
            samples.reserveCapacity(rounds)
            for _ in 0..<rounds {
                let start = clock.now
                _ = try await client.command(["GET", "bench:key"])
                samples.append(clock.now - start)
            }
            samples.sort()
            func micros(_ d: Duration) -> Double {
                Double(d.components.attoseconds) / 1e12 + Double(d.components.seconds) * 1e6
            }
            let p50 = micros(samples[samples.count / 2])
            let p99 = micros(samples[samples.count * 99 / 100])
            print(String(format: "redis GET round trip, one async caller : p50 %6.1f µs  p99 %6.1f µs", p50, p99))
            var blocking: [Duration] = []
            blocking.reserveCapacity(rounds)
            for _ in 0..<rounds {
                let start = clock.now
                _ = try await client.withConnection { try $0.command(["GET", "bench:key"]) }
                blocking.append(clock.now - start)
            }
            blocking.sort()
            print(
                String(
                    format: "redis GET round trip, blocking pool     : p50 %6.1f µs  p99 %6.1f µs",
                    micros(blocking[blocking.count / 2]), micros(blocking[blocking.count * 99 / 100])))
            if let theirs = redisBenchmark(url: url, test: "get", ops: rounds, depth: 1) {
                print(
                    String(
                        format: "redis GET round trip, redis-benchmark -P 1 -c 1: p50 %6.1f µs (%.0f req/s)",
                        (theirs.p50 ?? 0) * 1000, theirs.rate))
            }
            let perCaller = max(1, calls / callers)
            let start = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for caller in 0..<callers {
                    group.addTask {
                        for index in 0..<perCaller {
                            try await client.command(["SET", "bench:\(caller):\(index % 1000)", "xxx"])
                        }
                    }
                }
                try await group.waitForAll()
            }
            let elapsed = clock.now - start
            let rate = Double(perCaller * callers) / (micros(elapsed) / 1e6)
            print(String(format: "redis SET, %d concurrent async callers  : %10.0f ops/s", callers, rate))
            // The same load on the blocking worker pool (the path every call took before the multiplexer).
            let blockingStart = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for caller in 0..<callers {
                    group.addTask {
                        for index in 0..<(perCaller / 4) {
                            _ = try await client.withConnection {
                                try $0.command(["SET", "bench:\(caller):\(index % 1000)", "xxx"])
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let blockingRate = Double(perCaller / 4 * callers) / (micros(clock.now - blockingStart) / 1e6)
            print(String(format: "redis SET, %d callers on the blocking pool (4): %10.0f ops/s", callers, blockingRate))
            if let theirs = redisBenchmark(url: url, test: "set", ops: perCaller * callers, depth: 16) {
                print(
                    String(
                        format: "redis SET, redis-benchmark -P 16 -c 1     : %10.0f ops/s  (async callers = %.0f%%)",
                        theirs.rate, rate / theirs.rate * 100))
            }
        }

        /// A plain libzmq loop: PUSH and PULL on two threads, no wrapper.
        func plainZeroMQ(count: Int, payload: [UInt8]) throws -> Double {
            guard let ctx = zmq_ctx_new() else { throw ZMQError(code: zmq_errno(), operation: "ctx") }
            defer { zmq_ctx_term(ctx) }
            let pull = zmq_socket(ctx, ZMQ_PULL)
            var linger: Int32 = 0
            var hwm: Int32 = 100_000
            zmq_setsockopt(pull, ZMQ_LINGER, &linger, 4)
            zmq_setsockopt(pull, ZMQ_RCVHWM, &hwm, 4)
            guard zmq_bind(pull, "tcp://127.0.0.1:0") == 0 else { throw ZMQError(code: zmq_errno(), operation: "bind") }
            var buffer = [CChar](repeating: 0, count: 256)
            var length = buffer.count
            zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, &buffer, &length)
            let endpoint = String(
                decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let pushPointer = UInt(bitPattern: zmq_socket(ctx, ZMQ_PUSH))
            let start = Date()
            let sender = Thread {
                let push = UnsafeMutableRawPointer(bitPattern: pushPointer)
                var linger: Int32 = 5000  // let queued messages go out before close
                var hwm: Int32 = 100_000
                zmq_setsockopt(push, ZMQ_LINGER, &linger, 4)
                zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, 4)
                zmq_connect(push, endpoint)
                payload.withUnsafeBytes { raw in
                    for _ in 0..<count { zmq_send(push, raw.baseAddress, raw.count, 0) }
                }
                zmq_close(push)
            }
            sender.start()
            var message = [UInt8](repeating: 0, count: payload.count + 16)
            for _ in 0..<count { _ = zmq_recv(pull, &message, message.count, 0) }
            let elapsed = Date().timeIntervalSince(start)
            zmq_close(pull)
            return Double(count) / elapsed
        }

        /// The wrapper: loop-owned sockets, batched posts, batches received on an AsyncStream.
        func wrapperZeroMQ(count: Int, payload: [UInt8]) async throws -> Double {
            let context = try Context()
            let receiver = try SocketLoop(context: context, name: "bench-pull", logger: Logger(label: "bitten.test"))
            let sender = try SocketLoop(context: context, name: "bench-push", logger: Logger(label: "bitten.test"))
            let pull = try await receiver.open(.pull) { socket in
                try socket.setReceiveHighWaterMark(100_000)
                try socket.bind("tcp://127.0.0.1:0")
            }
            let push = try await sender.open(.push) { socket in
                try socket.setSendHighWaterMark(100_000)
                try socket.connect("tcp://127.0.0.1:\(pull.boundPort ?? 0)")
            }
            let start = Date()
            let message = Message([payload])
            async let sent: Void = {
                var remaining = count
                while remaining > 0 {
                    let n = min(1000, remaining)
                    try await push.send(batch: Array(repeating: message, count: n))
                    remaining -= n
                }
            }()
            var received = 0
            for await batch in pull.messages {
                received += batch.count
                if received >= count { break }
            }
            try await sent
            let elapsed = Date().timeIntervalSince(start)
            await sender.shutdown()
            await receiver.shutdown()
            return Double(received) / elapsed
        }

        func redisWrapper(url: RedisURL, ops: Int, depth: Int) throws -> Double {
            let connection = try RedisConnection(url: url)
            _ = try connection.command(["DEL", "myhash"])
            let start = Date()
            var done = 0
            while done < ops {
                let n = min(depth, ops - done)
                // The same workload as redis-benchmark -t hset -r 100000: one hash, fields from a 100 000 range.
                let commands = (0..<n).map { ["HSET", "myhash", "element:\((done + $0) % 100_000)", "xxx"] }
                _ = try connection.pipeline(commands)
                done += n
            }
            let elapsed = Date().timeIntervalSince(start)
            _ = try connection.command(["DEL", "myhash"])
            return Double(ops) / elapsed
        }

        func redisBenchmark(url: RedisURL, ops: Int, depth: Int) -> Double? {
            redisBenchmark(url: url, test: "hset", ops: ops, depth: depth)?.rate
        }

        /// Runs `redis-benchmark -t TEST -P DEPTH -c 1` and reads its requests per second and p50 (ms).
        func redisBenchmark(url: RedisURL, test: String, ops: Int, depth: Int) -> (rate: Double, p50: Double?)? {
            let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin"
            guard
                let binary = (path.split(separator: ":").map { "\($0)/redis-benchmark" } + ["/usr/bin/redis-benchmark"])
                    .first(where: { FileManager.default.isExecutableFile(atPath: $0) })
            else { return nil }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            var args = [
                "-h", url.host, "-p", String(url.port), "-t", test, "-n", String(ops), "-P", String(depth), "-c", "1",
                "-r", "100000", "-q",
            ]
            if let password = url.password { args += ["-a", password] }
            process.arguments = args
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return nil }
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            while process.isRunning { usleep(10_000) }
            // "HSET: 123456.79 requests per second, p50=0.031 msec" (the text may carry carriage-return progress lines)
            let text = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\r", with: "\n")
            for line in text.split(separator: "\n") where line.uppercased().hasPrefix(test.uppercased() + ":") {
                let fields = line.dropFirst(test.count + 1).trimmingCharacters(in: .whitespaces)
                guard let number = fields.split(separator: " ").first, let value = Double(number) else { continue }
                let p50 = fields.range(of: "p50=").flatMap {
                    Double(fields[$0.upperBound...].prefix { $0.isNumber || $0 == "." })
                }
                return (value, p50)
            }
            return nil
        }
    }
}
