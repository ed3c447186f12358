import ArgumentParser
import BittenDashboard
import BittenServices
import EASimulator
import Foundation
import Logging
import Redis

extension Bench {
    /// `bitten-bench fire`: fire latency from the HTTP request to the simulated EA receiving the command.
    struct FireLatency: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fire", abstract: "Fire latency (p50/p99) at a given rate with many EAs online.")

        @Option(help: "Simulated EAs online (each one is also a user).") var eas = 5000
        @Option(help: "Fires per second.") var rate = 1000
        @Option(help: "Fires in all (each for another user, so none is a duplicate).") var fires = 5000
        @Option(help: "Sockets per loop thread of the simulated fleet (fewer: commands reach the EAs sooner).")
        var socketsPerLoop = 10
        @Option(help: "Most loop threads of the simulated fleet.") var maxLoops = 600
        @Option(
            help:
                "Seconds between an EA's heartbeats (on 5555 and on 5556 each; the EA v2.05: 30, on the broker's clock)."
        )
        var heartbeatInterval: Double = 30
        @Option(
            help:
                "Heartbeat and tick waves per interval (1: every EA beats, or ticks, at the same moment; 0: one wave per loop thread of the fleet, 10 EAs each, the closest the fleet comes to terminals whose timers run on clocks of their own, as real ones do)."
        )
        var heartbeatPhases = 0
        @Option(
            help:
                "Seconds between an EA's TICKs on 5556 (the EA v2.05: 1, for each symbol whose quote moved; 0: none)."
        )
        var tickInterval: Double = 1
        @Option(help: "Keep-alive HTTP connections the client spreads the fires over.") var connections = 16
        @Option(help: "Burst phase: one signal fired by this many users at once (0: no burst).") var burst = 5000
        @Option(help: "Concurrent HTTP connections of the burst.") var burstConnections = 64
        @Flag(
            help:
                "Run on a loopback Redis Cluster of three primaries (no replicas, AOF everysec) instead of the managed Redis."
        )
        var cluster = false
        @Option(
            help:
                "The operator controls while firing: off (no flight recorder, no risk limits), on (the recorder and every risk limit, set so that none refuses), or both: off then on in one run, each on a fresh server, with both p99s."
        )
        var controls: Controls = .both
        @Option(
            help:
                "With --controls both: rounds of off then on, then on then off (each on fresh servers); the figures compared are the medians of the rounds' p99s (one round is at the mercy of this machine's noise)."
        )
        var rounds = 3
        @Flag(
            help:
                "An operator's dashboard open while firing: GET /snapshot once a second (what the server builds for an open dashboard's event stream)."
        )
        var dashboard = false
        @Option(
            help:
                "Write every fire's latencies to this CSV file (accepted_at epoch s, accepted → EA s, accepted → handed to libzmq s), to see when the slow ones happen (the last server measured when several are)."
        )
        var latencyCSV: String?
        @Flag(
            help:
                "Every fire names a malformed user UUID, so the server refuses it at validation (400) before the trade engine, Redis or an EA: what the HTTP path alone costs per request, the floor under a fire's CPU (each refusal also logs one info line). No burst."
        )
        var refused = false

        enum Controls: String, ExpressibleByArgument, CaseIterable {
            case off, on, both
            /// One control alone (to see what each costs).
            case recorder, limits, concentration
        }

        func run() async throws {
            // The config file the controls' servers read goes with the run.
            defer { try? FileManager.default.removeItem(atPath: Self.controlsFile) }
            if refused, controls == .both {
                throw ValidationError("--refused measures one server: give --controls off (or on, or one control)")
            }
            switch controls {
            case .off, .on:
                _ = try await measure(controlsOn: controls == .on, burstToo: burst > 0 && !refused)
            case .recorder, .limits, .concentration:
                _ = try await measure(controlsOn: true, burstToo: burst > 0 && !refused, only: controls)
            case .both:
                var offs: [(accepted: Double, request: Double)] = []
                var ons: [(accepted: Double, request: Double)] = []
                let count = max(1, rounds)
                for round in 1...count {
                    print("fire: round \(round) of \(count)")
                    // Off then on, then on then off (ABBA): a drift of the machine over the run (its page cache,
                    // another process waking) weighs on both sides alike instead of always on the second.
                    // The burst (when asked) once, in the last round with the controls on.
                    let burstNow = burst > 0 && round == count
                    if round % 2 == 1 {
                        offs.append(try await measure(controlsOn: false, burstToo: false))
                        ons.append(try await measure(controlsOn: true, burstToo: burstNow))
                    } else {
                        ons.append(try await measure(controlsOn: true, burstToo: burstNow))
                        offs.append(try await measure(controlsOn: false, burstToo: false))
                    }
                }
                let list = { (values: [Double]) in
                    values.map { String(format: "%.2f", $0 * 1000) }.joined(separator: ", ")
                }
                print(
                    "fire: p99 accepted → EA by round (ms): off [\(list(offs.map(\.accepted)))], on [\(list(ons.map(\.accepted)))]"
                )
                let off = (accepted: Bench.median(offs.map(\.accepted)), request: Bench.median(offs.map(\.request)))
                let on = (accepted: Bench.median(ons.map(\.accepted)), request: Bench.median(ons.map(\.request)))
                print(
                    String(
                        format:
                            "fire: controls off → on, median of %d rounds: server accepted → EA received p99 %.2f → %.2f ms (%+.1f %%), client → EA p99 %.2f → %.2f ms (%+.1f %%)",
                        count, off.accepted * 1000, on.accepted * 1000, (on.accepted / off.accepted - 1) * 100,
                        off.request * 1000, on.request * 1000, (on.request / off.request - 1) * 100))
                // Paired: each round's on against its own off (both ran within a minute of each other).
                let ratios = zip(offs, ons).map { $1.accepted / $0.accepted }
                let offSpread = (offs.map(\.accepted).max() ?? 0) / max(offs.map(\.accepted).min() ?? 1, 1e-9)
                print(
                    String(
                        format:
                            "fire: controls off → on, median of the rounds' own ratios: %+.1f %% (rounds: %@); off against off across rounds varies by up to %.0f %% (the noise a single round's comparison carries)",
                        (Bench.median(ratios) - 1) * 100,
                        ratios.map { String(format: "%+.0f %%", ($0 - 1) * 100) }.joined(separator: ", "),
                        (offSpread - 1) * 100))
            }
        }

        /// One server, one fleet, the fire phase (and the burst): p99 from accepted and from the request to the EA.
        func measure(controlsOn: Bool, burstToo: Bool, only: Controls? = nil) async throws -> (
            accepted: Double, request: Double
        ) {
            print(
                "fire: operator controls \(only.map { "\($0.rawValue) only" } ?? (controlsOn ? "ON (flight recorder, every risk limit, concentration limits)" : "OFF"))"
            )
            var redisCluster: LocalRedisCluster?
            if cluster {
                let directory =
                    NSTemporaryDirectory() + "bitten-bench-fire-cluster-\(getpid())\(controlsOn ? "-on" : "-off")"
                redisCluster = try LocalRedisCluster(
                    primaries: 3, replicasPerPrimary: 0, directory: directory, appendOnly: true)
            }
            defer { redisCluster?.stop() }
            var environment = try controlsEnvironment(controlsOn, only: only)
            if let redisCluster { environment["BITTEN_REDIS_URL"] = redisCluster.urlText }
            let server = try ServerUnderTest.start(environment: environment, tag: controlsOn ? "-on" : "-off")
            defer { server.stop() }
            // Keys through a client (on a cluster, each to its slot's primary); CPU per server process.
            let keyed: RedisClient
            let servers: [RedisConnection]
            if let redisCluster {
                keyed = RedisClient(
                    cluster: try RedisClusterURL(parsing: redisCluster.urlText), logger: Logger(label: "bitten.test"))
                servers = try redisCluster.servers.map { try RedisConnection(url: $0.url) }
            } else {
                let url = RedisURL(host: "127.0.0.1", port: try server.managedRedisPort())
                keyed = RedisClient(url: url, poolSize: 1, logger: Logger(label: "bitten.test"))
                servers = [try RedisConnection(url: url)]
            }
            defer { keyed.shutdown() }
            let redisCPU: () -> Double = { servers.reduce(0) { $0 + ServerUnderTest.redisCPUSeconds($1) } }
            let (fleet, running) = try await server.startFleet(
                eas: eas, heartbeat: .milliseconds(Int64(heartbeatInterval * 1000)),
                tickInterval: tickInterval > 0 ? .milliseconds(Int64(tickInterval * 1000)) : nil,
                socketsPerLoop: socketsPerLoop, maxLoops: maxLoops,
                heartbeatPhases: heartbeatPhases, tickPhases: heartbeatPhases)
            defer { running.cancel() }
            let uuids = fleet.uuids
            let http = BenchHTTP(host: "127.0.0.1", port: server.port("BITTEN_HTTP_PORT"))
            // Every EA's user, through the API (the trade engine is the writer of users).
            let now = Date().timeIntervalSince1970
            let created = try await http.run(jobs: uuids.count, connections: connections) { i in
                ("/users", #"{"uuid":"\#(uuids[i])","tier":"COMMANDER"}"#, now)
            }
            let refusedUsers = created.filter { $0.status != 201 }.count
            if refusedUsers > 0 { throw ValidationError("\(refusedUsers) users could not be created") }
            let signal =
                #"{"signal_id":"BENCH_FIRE_1","symbol":"EURUSD","direction":"BUY","entry":1.0852,"sl":1.0832,"tp":1.0892}"#
            _ = try await http.post("/signals", signal)
            // The fleet's own load (heartbeats, TICKs) before any fire: what every figure per fire below includes.
            let idleFrom = (Date().timeIntervalSince1970, server.cpuSeconds(), server.contextSwitches())
            try await Task.sleep(for: .seconds(2))
            let idleFor = Date().timeIntervalSince1970 - idleFrom.0
            let idle = (
                (server.cpuSeconds() - idleFrom.1) / idleFor, Double(server.contextSwitches() - idleFrom.2) / idleFor
            )
            print(
                String(
                    format:
                        "fire: server with the fleet online and no fire: %.0f%% of one core, %.0f context switches/s",
                    idle.0 * 100, idle.1))
            let count = min(fires, uuids.count)
            let start = Date().timeIntervalSince1970 + 0.2
            let rate = Double(self.rate)
            let cpuBefore = (server.cpuSeconds(), redisCPU(), (ProcessStats.cpuSeconds ?? 0))
            let machineBefore = MachineCPU.now()
            let switchesBefore = server.contextSwitches()
            // The operator's dashboard, when asked: one snapshot a second while the fires go out.
            let watching: Task<(read: Int, failed: Int), Never>? =
                dashboard
                ? Task {
                    var counts = (read: 0, failed: 0)
                    while !Task.isCancelled {
                        if (try? await http.get("/snapshot"))?.status == 200 {
                            counts.read += 1
                        } else {
                            counts.failed += 1
                        }
                        try? await Task.sleep(for: .seconds(1))
                    }
                    return counts
                } : nil
            let results = try await http.run(jobs: count, connections: connections) { i in
                let body = refused ? #"{"user_uuid":"not a UUID!"}"# : #"{"user_uuid":"\#(uuids[i])"}"#
                return ("/fire/BENCH_FIRE_1", body, start + Double(i) / rate)
            }
            watching?.cancel()
            if let snapshots = await watching?.value {
                print(
                    "fire: a dashboard open: \(snapshots.read) snapshots read while firing, \(snapshots.failed) failed")
            }
            let sent = results.map { result -> (Int, Double, Int, String?) in
                let fireID =
                    (try? JSONSerialization.jsonObject(with: Data(result.body)) as? [String: Any])?["fire_id"]
                    as? String
                return (result.index, result.sentAt, result.status, fireID)
            }
            let issued = Date().timeIntervalSince1970 - start
            let switches = server.contextSwitches() - switchesBefore
            // Where the two cores went while the fires were issued (the fleet of simulated EAs runs in this process).
            let busy = (
                (server.cpuSeconds() - cpuBefore.0) / issued * 100, (redisCPU() - cpuBefore.1) / issued * 100,
                ((ProcessStats.cpuSeconds ?? 0) - cpuBefore.2) / issued * 100
            )
            let rest = MachineCPU.rest(
                from: machineBefore, to: MachineCPU.now(), known: (busy.0 + busy.1 + busy.2) / 100 * issued,
                over: issued)
            try await Task.sleep(for: .seconds(2))
            let received = fleet.fireReceiveTimes
            var fromRequest: [Double] = []
            var fromAccepted: [Double] = []
            var pipeline: [[String]] = []
            var ids: [(String, Double)] = []
            for (_, t0, status, fireID) in sent where status == 201 {
                guard let fireID, let at = received[fireID] else { continue }
                fromRequest.append(at - t0)
                ids.append((fireID, at))
                let parts = fireID.split(separator: "-")
                let shard = parts.count == 4 ? Int(parts[2]) ?? 0 : 0
                pipeline.append(["HMGET", ShardKeys(shard: shard).fire(fireID), "created_at", "sent_at"])
            }
            var handedOver: [Double] = []
            var rows: [String] = []
            defer {
                if let latencyCSV {
                    let text = (["accepted_at,accepted_to_ea,accepted_to_libzmq"] + rows).joined(separator: "\n")
                    try? text.write(toFile: latencyCSV, atomically: true, encoding: .utf8)
                }
            }
            for ((_, at), reply) in zip(ids, try await keyed.pipeline(pipeline)) {
                let times = (reply.array ?? []).map { $0.string.flatMap(Double.init) }
                guard times.count == 2, let created = times[0] else { continue }
                fromAccepted.append(at - created)
                if latencyCSV != nil {
                    rows.append("\(created),\(at - created),\(times[1].map { String($0 - created) } ?? "")")
                }
                if let sentAt = times[1] { handedOver.append(sentAt - created) }
            }
            let failed = sent.filter { $0.2 != 201 }.count
            print(
                String(
                    format:
                        "fire: %d EAs online, %d fires issued in %.2f s (%.0f/s asked, %.0f/s achieved), %d refused, %d reached their EA",
                    eas, count, issued, rate, Double(count) / issued, failed, fromRequest.count))
            if refused {
                print(
                    "fire: every fire was refused at validation (--refused): no latency to an EA, the CPU below is the HTTP path's"
                )
            } else {
                print(
                    String(
                        format: "fire: server accepted → EA received: p50 %.2f ms, p99 %.2f ms, max %.2f ms",
                        Bench.percentile(fromAccepted, 0.50) * 1000, Bench.percentile(fromAccepted, 0.99) * 1000,
                        (fromAccepted.max() ?? 0) * 1000))
                print(
                    String(
                        format:
                            "fire: server accepted → handed to libzmq (checks, sizing, reservation, send): p50 %.2f ms, p99 %.2f ms",
                        Bench.percentile(handedOver, 0.50) * 1000, Bench.percentile(handedOver, 0.99) * 1000))
                print(
                    String(
                        format: "fire: client sends HTTP → EA received: p50 %.2f ms, p99 %.2f ms",
                        Bench.percentile(fromRequest, 0.50) * 1000, Bench.percentile(fromRequest, 0.99) * 1000))
            }
            print(
                String(
                    format:
                        "fire: CPU while firing (%% of one core, %d cores): server %.0f%%, Redis %.0f%%, HTTP client + simulated fleet %.0f%%",
                    ProcessInfo.processInfo.activeProcessorCount, busy.0, busy.1, busy.2))
            if let rest {
                print(
                    String(
                        format:
                            "fire: the rest of this machine while firing: %.0f%% of one core (other processes and the kernel's threads: what preempts the server here and there), hypervisor steal %.0f%%",
                        rest.others, rest.steal))
            }
            print(
                String(
                    format:
                        "fire: server CPU %.0f µs per fire, %.1f context switches per fire (thread hand-offs; each costs tens of µs on a VM)",
                    busy.0 / 100 * issued / Double(max(count, 1)) * 1e6, Double(switches) / Double(max(count, 1))))
            print(
                String(
                    format:
                        "fire: above the fleet's own load: %.0f µs of server CPU and %.1f context switches per fire",
                    (busy.0 / 100 - idle.0) * issued / Double(max(count, 1)) * 1e6,
                    (Double(switches) - idle.1 * issued) / Double(max(count, 1))))
            let wrong = fleet.receivedFires().filter { fire in !uuids.contains(fire.targetUUID) }.count
            print(
                "fire: \(fleet.receivedFires().count) fire commands received by the fleet, \(wrong) for an unknown UUID"
            )
            if burstToo {
                try await burstPhase(
                    http: http, keyed: keyed, redisCPU: redisCPU, fleet: fleet, uuids: uuids, server: server)
            }
            return (Bench.percentile(fromAccepted, 0.99), Bench.percentile(fromRequest, 0.99))
        }

        /// One signal fired by `burst` users at once (concurrent HTTP calls): how long until the last EA has
        /// its command, and until the last fill is applied (its position open).
        func burstPhase(
            http: BenchHTTP, keyed: RedisClient, redisCPU: () -> Double, fleet: Fleet, uuids: [String],
            server: ServerUnderTest
        ) async throws {
            let count = min(burst, uuids.count)
            let signal =
                #"{"signal_id":"BENCH_BURST_1","symbol":"EURUSD","direction":"BUY","entry":1.0852,"sl":1.0832,"tp":1.0892}"#
            _ = try await http.post("/signals", signal)
            let keys = (0..<16).map { ShardKeys(shard: $0) }
            func open() async throws -> Int {
                try await keyed.pipeline(keys.map { ["SCARD", $0.openPositions] }).reduce(0) { $0 + ($1.int ?? 0) }
            }
            let before = try await open()
            let cpu = (server.cpuSeconds(), redisCPU())
            let start = Date().timeIntervalSince1970
            let results = try await http.run(jobs: count, connections: burstConnections) { i in
                ("/fire/BENCH_BURST_1", #"{"user_uuid":"\#(uuids[i])"}"#, start)
            }
            let answered = Date().timeIntervalSince1970 - start
            let ids = Set(
                results.compactMap { result -> String? in
                    guard result.status == 201 else { return nil }
                    return (try? JSONSerialization.jsonObject(with: Data(result.body)) as? [String: Any])?["fire_id"]
                        as? String
                })
            var lastReceived: Double?
            var filled: Double?
            while Date().timeIntervalSince1970 - start < 60 {
                let received = fleet.fireReceiveTimes.filter { ids.contains($0.key) }
                if lastReceived == nil, received.count == ids.count {
                    lastReceived = received.values.max().map { $0 - start }
                }
                if filled == nil, try await open() >= before + ids.count {
                    filled = Date().timeIntervalSince1970 - start
                }
                if lastReceived != nil && filled != nil { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            let used = (server.cpuSeconds() - cpu.0, redisCPU() - cpu.1)
            print(
                String(
                    format:
                        "burst: %d users fire one signal at once over %d connections: %d accepted, every answer after %.2f s",
                    count, burstConnections, ids.count, answered))
            print(
                String(
                    format: "burst: the last EA had its command after %@, the last fill was applied after %@",
                    lastReceived.map { String(format: "%.2f s", $0) } ?? "(not all within 60 s)",
                    filled.map { String(format: "%.2f s", $0) } ?? "(not all within 60 s)"))
            print(
                String(
                    format: "burst: CPU server %.2f s (%.0f µs per fire), Redis %.2f s", used.0,
                    used.0 / Double(max(1, count)) * 1e6, used.1))
        }
    }
}
