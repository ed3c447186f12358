import ArgumentParser
import EASimulator
import Foundation
import Logging
import Redis
import Synchronization
import ZeroMQ

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

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
        heartbeatPhases: Int = 20, tickPhases: Int = 1
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
        config.tickPhases = tickPhases
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

    static func start(environment extra: [String: String] = [:], tag: String = "") throws -> ServerUnderTest {
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
        let dataDir = NSTemporaryDirectory() + "bitten-bench-\(getpid())\(tag)"
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
        // A fresh system each time (a second round with the same tag must not find the first one's users).
        try? FileManager.default.removeItem(atPath: dataDir)
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

    /// Stops the server; its data (the managed Redis's files, the log) goes too unless `BITTEN_BENCH_KEEP` is set.
    func stop() {
        kill(pid, SIGTERM)
        for _ in 0..<200 where process.isRunning { Thread.sleep(forTimeInterval: 0.05) }
        if ProcessInfo.processInfo.environment["BITTEN_BENCH_KEEP"] == nil, !process.isRunning {
            try? FileManager.default.removeItem(atPath: dataDir)
        }
    }

    func health() async throws -> [String: Any] {
        let url = URL(string: "http://127.0.0.1:\(port("BITTEN_HTTP_PORT"))/health")!
        let (data, _) = try await URLSession.shared.data(from: url)
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    /// The server's `/metrics` text.
    func metricsText() async throws -> String {
        let url = URL(string: "http://127.0.0.1:\(port("BITTEN_HTTP_PORT"))/metrics")!
        return String(decoding: try await URLSession.shared.data(from: url).0, as: UTF8.self)
    }

    /// A counter's value from `/metrics` (its lines summed where `labels` match, e.g. `path="reader"`).
    func counter(_ name: String, labels: String = "") async throws -> Int {
        try await metricsText().split(separator: "\n").filter { $0.hasPrefix(name) && $0.contains(labels) }
            .compactMap { Double($0.split(separator: " ").last ?? "").map { Int($0) } }.reduce(0, +)
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

    /// Context switches of every thread of the server so far (voluntary and not, from `/proc/PID/task/*/status`;
    /// threads that ended are not counted). On a VM each one costs tens of microseconds of CPU, so the switches per
    /// fire say how many thread hand-offs a fire costs.
    func contextSwitches() -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.reduce(0) { total, task in
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8) else {
                return total
            }
            return text.split(separator: "\n").reduce(total) { sum, line in
                guard line.contains("ctxt_switches:") else { return sum }
                return sum + (Int(line.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0)
            }
        }
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

/// How long Redis keeps a client waiting while the bench runs: a thread of its own sends PING on its own
/// connection every millisecond and times each answer. While one command runs (a whole MULTI/EXEC, a
/// script), Redis answers nobody else, so a long commit shows here as a slow PING (as it would for a fire's
/// commit waiting behind it).
final class RedisPingProbe: Sendable {
    /// The PING times so far (seconds, in order) and whether the probe goes on.
    private let state = Mutex<(times: [Double], running: Bool)>(([], true))
    private let done = DispatchSemaphore(value: 0)

    init(url: RedisURL) throws {
        _ = try RedisConnection(url: url).command(["PING"])
        Thread.detachNewThread { [self] in
            guard let connection = try? RedisConnection(url: url) else {
                done.signal()
                return
            }
            while state.withLock({ $0.running }) {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try? connection.command(["PING"])
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                state.withLock { $0.times.append(seconds) }
                usleep(1_000)
            }
            done.signal()
        }
    }

    /// Stops the probe; the PING times in seconds, in order.
    func stop() -> [Double] {
        state.withLock { $0.running = false }
        done.wait()
        return state.withLock { $0.times }
    }
}

final class ResultBox: @unchecked Sendable {
    var value: [String: Any]?
}
