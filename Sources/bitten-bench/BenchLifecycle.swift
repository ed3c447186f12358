import ArgumentParser
import EASimulator
import Foundation
import Logging
import Redis
import ZeroMQ

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

extension Bench {
    /// `bitten-bench lifecycle`: a real `bitten up` child process under EA load.
    struct Lifecycle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Relay throughput, server CPU with N heartbeating EAs plus ticks, and memory with many nodes.")

        @Option(help: "Messages for the relay throughput run.") var relayMessages = 1_000_000
        @Option(help: "Simulated EAs for the load run.") var eas = 5000
        @Option(help: "Total TICKs per second in the load run.") var ticksPerSecond = 20_000
        @Option(help: "Seconds the load run is measured.") var seconds = 20
        @Option(help: "Nodes registered for the memory figure.") var nodes = 10_000
        @Option(help: "Sender threads for the relay run.") var relaySenders = 1
        @Option(help: "Relay rounds, each beside its own plain-libzmq reference; the summary is their median.")
        var relayRounds = 3
        @Option(help: "Phases to run, comma-separated: relay, load, memory.") var phases = "relay,load,memory"
        @Option(help: "Heartbeat interval of the load run's EAs, seconds.") var heartbeat: Double = 1
        @Option(
            help:
                "Run the load's EAs in this many `bitten simulate` processes (one process holds ~9 000 EAs within 20 000 descriptors); 0 = in this process."
        )
        var fleetProcesses = 0

        func run() async throws {
            let server = try ServerUnderTest.start()
            defer { server.stop() }
            print("server: pid \(server.pid), data \(server.dataDir)")

            let selected = Set(phases.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            if selected.contains("relay") {
                // The machine is noisy (plain libzmq alone varies by 2× between runs): rounds alternate the
                // plain reference and the relay, and the summary is the median of the per-round ratios.
                var ratios: [Double] = []
                var costs: [Double] = []
                var transportRatios: [Double] = []
                for round in 1...max(1, relayRounds) {
                    let transport = try Bench.Transport().plainZeroMQ(
                        count: min(relayMessages, 1_000_000), payload: [UInt8](repeating: 65, count: 180))
                    let plain = try PlainRelay.run(count: min(relayMessages, 2_000_000), payloads: Self.relayPayloads)
                    let cpuBefore = server.cpuSeconds()
                    let countersBefore = try await server.portCounters()
                    let relay = try relayThroughput(server)
                    let cpu = server.cpuSeconds() - cpuBefore
                    let countersAfter = try await server.portCounters()
                    print(
                        String(
                            format: "relay round %d: server counted %d received on 5556, %d published on 5560", round,
                            (countersAfter["market"]?.received ?? 0) - (countersBefore["market"]?.received ?? 0),
                            (countersAfter["relay"]?.sent ?? 0) - (countersBefore["relay"]?.sent ?? 0)))
                    print(
                        String(
                            format:
                                "relay round %d 5556->5560: %d in, %d out at the subscriber (%d lost), %.0f msg/s = %.0f%% of the plain libzmq relay (%.0f msg/s), %.0f%% of a plain PUSH->PULL (%.0f msg/s)",
                            round, relay.sent, relay.received, relay.sent - relay.received, relay.rate,
                            relay.rate / plain * 100, plain,
                            relay.rate / transport * 100, transport))
                    transportRatios.append(relay.rate / transport * 100)
                    print(
                        String(
                            format:
                                "relay round %d: server CPU %.2f s for %d messages = %.2f µs/message, i.e. %.0f msg/s per core",
                            round, cpu, relay.sent, cpu / Double(relay.sent) * 1e6, Double(relay.sent) / max(cpu, 0.001)
                        ))
                    ratios.append(relay.rate / plain * 100)
                    costs.append(cpu / Double(relay.sent) * 1e6)
                }
                func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
                print(
                    String(
                        format:
                            "relay: median of %d rounds: %.0f%% of the plain libzmq relay (rounds: %@); %.0f%% of a plain PUSH->PULL; %.2f µs of server CPU per message",
                        ratios.count, median(ratios),
                        ratios.map { String(format: "%.0f%%", $0) }.joined(separator: " "),
                        median(transportRatios), median(costs)))
            }
            if selected.contains("load") { try await load(server) }
            if selected.contains("memory") { try memory(server, loadEAs: selected.contains("load") ? eas : 0) }
        }

        /// A thousand EAs' worth of ticks (each stays far below the per-EA rate limit).
        static let relayPayloads: [[UInt8]] = (0..<1000).flatMap { ea in
            ["EURUSD", "GBPUSD", "USDJPY", "XAUUSD"].map {
                Array(
                    #"{"type":"TICK","node_id":"NODE_1_1","user_uuid":"user_bench_\#(ea)","symbol":"\#($0)","bid":1.08512,"ask":1.08525,"spread":1.3,"volume":7,"timestamp":"2026.11.24 14:03:12"}"#
                        .utf8)
            }
        }

        func relayThroughput(_ server: ServerUnderTest) throws -> (sent: Int, received: Int, rate: Double) {
            let context = try Context()
            let sub = try Socket(context: context, type: .sub)
            try sub.setReceiveHighWaterMark(0)
            try sub.setReceiveTimeout(.seconds(5))
            try sub.subscribe("")
            try sub.connect("tcp://127.0.0.1:\(server.port("BITTEN_RELAY_PORT"))")
            Thread.sleep(forTimeInterval: 0.5)  // let the subscription reach the PUB
            let payloads = Self.relayPayloads
            let senders = max(1, relaySenders)
            let perSender = relayMessages / senders
            let total = perSender * senders
            let marketPort = server.port("BITTEN_MARKET_PORT")
            let start = Date()
            for s in 0..<senders {
                let thread = Thread {
                    guard let push = try? Socket(context: context, type: .push) else { return }
                    try? push.setSendHighWaterMark(100_000)
                    // Closing must deliver what is still queued, or the tail of the run is lost here.
                    try? push.setLinger(.seconds(30))
                    try? push.connect("tcp://127.0.0.1:\(marketPort)")
                    for i in 0..<perSender { try? push.send(Message([payloads[(i + s) % payloads.count]])) }
                    push.close()
                }
                thread.start()
            }
            var received = 0
            while received < total, (try sub.receive()) != nil { received += 1 }
            let elapsed = Date().timeIntervalSince(start)
            sub.close()
            return (total, received, Double(received) / elapsed)
        }

        func load(_ server: ServerUnderTest) async throws {
            let tickInterval = Duration.microseconds(Int64(1_000_000 * Double(eas) / Double(max(ticksPerSecond, 1))))
            let interval = Duration.milliseconds(Int64(heartbeat * 1000))
            var fleet: Fleet?
            var task: Task<Void, any Error>?
            var children: [Process] = []
            if fleetProcesses > 0 {
                children = try server.startFleetProcesses(
                    eas: eas, processes: fleetProcesses, heartbeat: heartbeat,
                    tickRate: ticksPerSecond > 0 ? Double(ticksPerSecond) / Double(eas) : 0)
            } else {
                let started = try await server.startFleet(eas: eas, heartbeat: interval, tickInterval: tickInterval)
                (fleet, task) = (started.0, started.1)
            }
            defer {
                task?.cancel()
                for child in children where child.isRunning { child.terminate() }
            }
            try await Task.sleep(for: .seconds(2))
            let before = try await server.portCounters()
            let cpuBefore = server.cpuSeconds()
            let ticksBefore = fleet?.stats.ticksSent ?? 0
            let start = Date()
            try await Task.sleep(for: .seconds(seconds))
            let elapsed = Date().timeIntervalSince(start)
            let cpu = (server.cpuSeconds() - cpuBefore) / elapsed * 100
            let after = try await server.portCounters()
            let marketIn = (after["market"]?.received ?? 0) - (before["market"]?.received ?? 0)
            let relayOut = (after["relay"]?.sent ?? 0) - (before["relay"]?.sent ?? 0)
            let commandIn = (after["command"]?.received ?? 0) - (before["command"]?.received ?? 0)
            let ticks = fleet.map { $0.stats.ticksSent - ticksBefore } ?? relayOut
            let online = (try? await server.health()["nodes"] as? [String: Any])?["online"] as? Int ?? 0
            print(
                String(
                    format:
                        "load: %d EAs online (%@), heartbeat %.0f s on both channels, %.0f ticks/s sent; server CPU %.1f%% of one core over %.0f s",
                    online, fleetProcesses > 0 ? "\(fleetProcesses) simulate processes" : "in-process fleet", heartbeat,
                    Double(ticks) / elapsed, cpu, elapsed))
            print(
                String(
                    format:
                        "load: market in %.0f msg/s, command in %.0f msg/s, relay out %.0f msg/s; server RSS %.1f MB",
                    Double(marketIn) / elapsed, Double(commandIn) / elapsed, Double(relayOut) / elapsed, server.rssMB())
            )
            print(
                String(
                    format: "load: %.1f µs of server CPU per EA message",
                    cpu / 100 * elapsed / Double(max(1, marketIn + commandIn)) * 1e6))
            task?.cancel()
            _ = try? await task?.value
            for child in children where child.isRunning { child.terminate() }
            // Every TICK the server received was relayed (telemetry decodes each once and republishes it).
            let final = try await server.portCounters()
            let tickOut = (final["relay"]?.sent ?? 0)
            print(
                "load: relay count check: relay sent \(tickOut) in total, market received \(final["market"]?.received ?? 0) (market includes heartbeats/handshakes)"
            )
        }

        func memory(_ server: ServerUnderTest, loadEAs: Int) throws {
            let context = try Context()
            let push = try Socket(context: context, type: .push)
            try push.setSendHighWaterMark(100_000)
            try push.connect("tcp://127.0.0.1:\(server.port("BITTEN_MARKET_PORT"))")
            for i in 0..<nodes {
                let uuid = "user_mem_\(i)"
                let text =
                    #"{"type":"handshake","deployment_mode":"universal_dealer","node_id":"NODE_\#(80_000_000 + i)_1","user_uuid":"\#(uuid)","account":\#(80_000_000 + i),"broker":"Bench Broker \#(i % 20)","server":"Bench-\#(i % 20)","chart_symbol":"EURUSD","monitored_symbols":15,"symbol_list":"EURUSD,GBPUSD,USDJPY,USDCAD,AUDUSD,NZDUSD,EURJPY,GBPJPY,EURGBP,USDCHF,EURAUD,GBPCHF,AUDJPY,XAUUSD,BTCUSD","currency":"USD","balance":10000.00,"equity":10000.00,"leverage":500,"version":"2.05","socket_type":"DEALER","timestamp":"2026.11.24 14:03:11"}"#
                try push.send(text)
            }
            let deadline = Date().addingTimeInterval(60)
            var total = 0
            while Date() < deadline {
                total = server.nodesTotalBlocking()
                if total >= nodes + loadEAs { break }
                Thread.sleep(forTimeInterval: 0.5)
            }
            Thread.sleep(forTimeInterval: 2)
            print(String(format: "memory: %d registered nodes, server RSS %.1f MB", total, server.rssMB()))
            push.close()
        }
    }
}

/// A `bitten up` child process on free ports with its own data directory.
struct ServerUnderTest {
    let process: Process
    let ports: [String: Int]
    let dataDir: String
    var pid: Int32 { process.processIdentifier }

    func port(_ name: String) -> Int { ports[name] ?? 0 }

    /// Starts a fleet of `eas` simulated EAs (one symbol, shared PUSH sockets) against this server and
    /// waits (at most 2 minutes) until they are all online.
    func startFleet(
        eas: Int, heartbeat: Duration, tickInterval: Duration?, socketsPerLoop: Int = 3000, maxLoops: Int = 32,
        heartbeatPhases: Int = 20
    ) async throws -> (Fleet, Task<Void, any Error>) {
        var config = FleetConfiguration(
            count: eas, commandPort: port("BITTEN_COMMAND_PORT"), marketPort: port("BITTEN_MARKET_PORT"),
            confirmPort: port("BITTEN_CONFIRM_PORT"), heartbeatInterval: heartbeat, tickInterval: tickInterval)
        config.symbols = ["EURUSD"]
        config.sendOHLC = false
        // Load benches measure Bitten, not the EA's one-command-per-tick reading.
        config.fidelity = .idealised
        config.sharedPushSockets = 50
        config.socketsPerLoop = socketsPerLoop
        config.maxLoops = maxLoops
        // Terminals beat on their own clocks: spread each interval's heartbeats over it in waves.
        config.heartbeatPhases = heartbeatPhases
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        let fleet = try Fleet(configuration: config, logger: logger)
        let task = Task { try await fleet.run() }
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            if let nodes = try? await health()["nodes"] as? [String: Any], nodes["online"] as? Int ?? 0 >= eas { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        return (fleet, task)
    }

    /// Starts `processes` `bitten simulate` children sharing `eas` idealised EAs (one process holds at
    /// most ~9 000 within 20 000 descriptors) and waits (at most 3 minutes) until they are all online.
    func startFleetProcesses(eas: Int, processes: Int, heartbeat: Double, tickRate: Double) throws -> [Process] {
        var children: [Process] = []
        let share = (eas + processes - 1) / processes
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("BITTEN_") }
        for (name, port) in ports { environment[name] = String(port) }
        environment["BITTEN_DATA_DIR"] = dataDir + "/simulate"
        for index in 0..<processes {
            let count = min(share, eas - index * share)
            guard count > 0 else { break }
            let child = Process()
            child.executableURL = process.executableURL
            child.arguments = [
                "simulate", "--eas", String(count), "--heartbeat", String(heartbeat),
                "--tick-rate", String(tickRate), "--uuid-prefix", "user_p\(index)_",
                "--account-base", String(60_000_000 + index * 1_000_000), "--shared-push-sockets", "50",
                "--idealised", "--log-level", "warning",
            ]
            child.environment = environment
            child.standardOutput = FileHandle.nullDevice
            child.standardError = FileHandle.nullDevice
            try child.run()
            children.append(child)
        }
        let deadline = Date().addingTimeInterval(180)
        while Date() < deadline {
            if let nodes = healthBlocking()?["nodes"] as? [String: Any], nodes["online"] as? Int ?? 0 >= eas { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        return children
    }

    /// The port of the managed redis-server it started (from its state file).
    func managedRedisPort() throws -> Int {
        let file = dataDir + "/redis/managed-redis.state"
        guard let text = try? String(contentsOfFile: file, encoding: .utf8),
            let port = text.split(separator: " ").last.flatMap({
                Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
            })
        else {
            throw ValidationError("no managed Redis state in \(file)")
        }
        return port
    }

    /// The `bitten` executable measured: `BITTEN_EXECUTABLE`, or the one built beside this benchmark.
    static func bittenExecutable() throws -> String {
        if let path = ProcessInfo.processInfo.environment["BITTEN_EXECUTABLE"], !path.isEmpty { return path }
        let me =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let beside = URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("bitten").path
        guard FileManager.default.isExecutableFile(atPath: beside) else {
            throw ValidationError(
                "no bitten executable beside \(me): build it (swift build -c release) or set BITTEN_EXECUTABLE")
        }
        return beside
    }

    static func start(environment extra: [String: String] = [:]) throws -> ServerUnderTest {
        let names = [
            "BITTEN_HTTP_PORT", "BITTEN_COMMAND_PORT", "BITTEN_MARKET_PORT", "BITTEN_SIGNAL_PORT",
            "BITTEN_CONFIRM_PORT",
            "BITTEN_SIGNAL_IN_PORT", "BITTEN_RELAY_PORT", "BITTEN_ALERT_PORT", "BITTEN_QUERY_PORT",
        ]
        var ports: [String: Int] = [:]
        for name in names {
            var port = LocalRedisServerPort.next()
            while ports.values.contains(port) { port = LocalRedisServerPort.next() }
            ports[name] = port
        }
        let dataDir = NSTemporaryDirectory() + "bitten-bench-\(getpid())"
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("BITTEN_") }
        for (name, port) in ports { environment[name] = String(port) }
        environment["BITTEN_DATA_DIR"] = dataDir
        environment["BITTEN_BIND_HOST"] = "127.0.0.1"
        environment.merge(extra) { _, new in new }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try bittenExecutable())
        process.arguments = ["up", "--log-level", "warning"]
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dataDir + "/server.log", contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: dataDir + "/server.log"))
        try process.run()
        let server = ServerUnderTest(process: process, ports: ports, dataDir: dataDir)
        for _ in 0..<300 {
            if server.healthBlocking() != nil { return server }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw ValidationError("bitten up did not become healthy; see \(dataDir)/server.log")
    }

    func stop() {
        kill(pid, SIGTERM)
        for _ in 0..<200 where process.isRunning { Thread.sleep(forTimeInterval: 0.05) }
    }

    func health() async throws -> [String: Any] {
        let url = URL(string: "http://127.0.0.1:\(port("BITTEN_HTTP_PORT"))/health")!
        let (data, _) = try await URLSession.shared.data(from: url)
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    func healthBlocking() -> [String: Any]? {
        let box = ResultBox()
        let semaphore = DispatchSemaphore(value: 0)
        let url = URL(string: "http://127.0.0.1:\(port("BITTEN_HTTP_PORT"))/health")!
        URLSession.shared.dataTask(with: url) { data, _, _ in
            box.value = data.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
            semaphore.signal()
        }.resume()
        _ = semaphore.wait(timeout: .now() + 5)
        return box.value
    }

    func nodesTotalBlocking() -> Int { (healthBlocking()?["nodes"] as? [String: Any])?["total"] as? Int ?? 0 }

    func portCounters() async throws -> [String: (received: Int, sent: Int)] {
        var result: [String: (received: Int, sent: Int)] = [:]
        for entry in try await health()["ports"] as? [[String: Any]] ?? [] {
            guard let name = entry["name"] as? String else { continue }
            result[name] = (entry["received"] as? Int ?? 0, entry["sent"] as? Int ?? 0)
        }
        return result
    }

    /// utime + stime of the server process, in seconds.
    func cpuSeconds() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return 0 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// used_cpu_user + used_cpu_sys of the Redis server behind `redis`, in seconds.
    static func redisCPUSeconds(_ redis: RedisConnection) -> Double {
        guard let reply = try? redis.command(["INFO", "cpu"]), let info = reply.string else { return 0 }
        return ["used_cpu_user", "used_cpu_sys"].reduce(0) { total, name in
            total + (RedisConnection.infoField(name, in: info).flatMap { Double($0) } ?? 0)
        }
    }

    /// Bytes in the Redis server's append-only file(s) (0 without AOF), and how many AOF rewrites it has
    /// done (a rewrite shrinks the file: a difference across one measures nothing).
    static func redisAOF(_ redis: RedisConnection) -> (bytes: Int, rewrites: Int) {
        guard let reply = try? redis.command(["INFO", "persistence"]), let info = reply.string else { return (0, 0) }
        return (
            RedisConnection.infoField("aof_current_size", in: info).flatMap { Int($0) } ?? 0,
            RedisConnection.infoField("aof_rewrites", in: info).flatMap { Int($0) } ?? 0
        )
    }

    func rssMB() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        let kb = Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        return kb / 1024
    }
}

final class ResultBox: @unchecked Sendable {
    var value: [String: Any]?
}
