import ArgumentParser
import BittenCore
import BittenServices
import Foundation
import Logging
import Redis
import ZeroMQ

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `bitten check`: the infrastructure checks, one line each; the exit code is the number of failures.
struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Check a running system: Redis, every ZeroMQ port and its socket type, a synthetic EA, a protection query, the HTTP API."
    )

    @OptionGroup var options: ConfigOptions
    @Option(help: "Seconds each check may take.") var timeout = 5.0

    func run() async throws {
        let config = try resolveOrExit(options)
        let host = config.zmqHost == "*" || config.zmqHost == "0.0.0.0" ? "127.0.0.1" : config.zmqHost
        let httpHost = config.httpHost == "0.0.0.0" ? "127.0.0.1" : config.httpHost
        let api = "http://\(httpHost):\(config.httpPort)"
        var failures = 0
        func report(_ name: String, _ result: Result<String, CheckFailure>) {
            switch result {
            case .success(let detail):
                print("PASS  \(name.padding(toLength: 34, withPad: " ", startingAt: 0)) \(detail)")
            case .failure(let failure):
                failures += 1
                print("FAIL  \(name.padding(toLength: 34, withPad: " ", startingAt: 0)) \(failure.reason)")
            }
        }

        // Redis.
        let clusterURL: RedisClusterURL? =
            config.redisCluster
            ?? (config.redisURL == nil && config.managedCluster
                ? ManagedCluster.runningPorts(dataDir: config.dataDir).map {
                    RedisClusterURL(seeds: $0.map { ClusterEndpoint(host: "127.0.0.1", port: $0) })
                }
                : nil)
        let redisURL: RedisURL? =
            config.onCluster ? nil : config.redisURL ?? Self.managedRedisURL(dataDir: config.dataDir)
        if let clusterURL {
            report(
                "redis: cluster state",
                await Result { () async throws(CheckFailure) -> String in
                    let client = RedisClient(cluster: clusterURL, logger: Logger(label: "bitten.test"))
                    defer { client.shutdown() }
                    do {
                        let infos = try await client.commandOnEveryPrimary(["CLUSTER", "INFO"])
                        guard let bad = infos.first(where: { !($0.string ?? "").contains("cluster_state:ok") }) else {
                            let start = ContinuousClock.now
                            let key = "bitten:check:\(getpid()):\(UInt32.random(in: 0...UInt32.max))"
                            let value = UUID().uuidString
                            try await client.command(["SET", key, value, "EX", "60"])
                            let back = try await client.command(["GET", key]).string
                            try await client.command(["DEL", key])
                            guard back == value else { throw CheckFailure("wrote \(value), read \(back ?? "nothing")") }
                            let took = Int((ContinuousClock.now - start) / .microseconds(1))
                            let persistence = try await client.commandOnEveryPrimary(["INFO", "persistence"])
                            let aof = persistence.filter { ($0.string ?? "").contains("aof_enabled:1") }.count
                            return
                                "\(infos.count) primaries, cluster_state ok; write/read/delete in \(took) µs; AOF on \(aof) of \(infos.count) primaries"
                        }
                        let line =
                            (bad.string ?? "").split(whereSeparator: \.isNewline).first {
                                $0.hasPrefix("cluster_state")
                            } ?? "no cluster_state"
                        throw CheckFailure("a primary reports \(line)")
                    } catch let failure as CheckFailure { throw failure } catch {
                        throw CheckFailure("\(clusterURL): \(error)")
                    }
                })
        } else if config.onCluster {
            report(
                "redis: cluster state",
                .failure(CheckFailure("no managed cluster state in \(ManagedCluster.directory(config.dataDir))")))
        } else if let redisURL {
            report(
                "redis: connect and PING",
                Result { () throws(CheckFailure) -> String in
                    do {
                        let connection = try RedisConnection(url: redisURL, timeout: .seconds(Int64(timeout)))
                        let start = ContinuousClock.now
                        let reply = try connection.command(["PING"])
                        guard reply.string == "PONG" else { throw CheckFailure("PING answered \(reply)") }
                        let took = Int((ContinuousClock.now - start) / .microseconds(1))
                        // The trade scripts need COPY (Redis 6.2).
                        let version = try connection.serverVersion()
                        let text = version.map(String.init).joined(separator: ".")
                        if version.lexicographicallyPrecedes([6, 2]) {
                            throw CheckFailure("Redis \(text) is too old: Bitten needs 6.2 or later")
                        }
                        return "\(redisURL.host):\(redisURL.port) (Redis \(text)) answered in \(took) µs"
                    } catch let failure as CheckFailure { throw failure } catch {
                        throw CheckFailure("\(redisURL.host):\(redisURL.port): \(error)")
                    }
                })
            report(
                "redis: persistence round trip",
                Result { () throws(CheckFailure) -> String in
                    do {
                        let connection = try RedisConnection(url: redisURL, timeout: .seconds(Int64(timeout)))
                        let key = "bitten:check:\(getpid()):\(UInt32.random(in: 0...UInt32.max))"
                        let value = UUID().uuidString
                        _ = try connection.command(["SET", key, value, "EX", "60"])
                        let back = try connection.command(["GET", key]).string
                        _ = try connection.command(["DEL", key])
                        guard back == value else { throw CheckFailure("wrote \(value), read \(back ?? "nothing")") }
                        let info = try connection.command(["INFO", "persistence"]).string ?? ""
                        let aof = info.contains("aof_enabled:1")
                        let rdbOK = info.contains("rdb_last_bgsave_status:ok")
                        let aofOK = !aof || info.contains("aof_last_write_status:ok")
                        guard aofOK && rdbOK else {
                            throw CheckFailure(
                                "last write to disk failed (INFO persistence: aof ok \(aofOK), rdb ok \(rdbOK))")
                        }
                        return "write/read/delete ok; " + (aof ? "AOF on" : "AOF off, RDB snapshots only")
                    } catch let failure as CheckFailure { throw failure } catch { throw CheckFailure("\(error)") }
                })
        } else {
            report(
                "redis: connect and PING",
                .failure(CheckFailure("no BITTEN_REDIS_URL and no managed redis state in \(config.dataDir)/redis")))
            report("redis: persistence round trip", .failure(CheckFailure("no Redis to check")))
        }

        // Every ZeroMQ port answers the ZMTP handshake as the right socket type.
        let ports: [(String, Int, String)] = [
            ("command", config.commandPort, "ROUTER"), ("market", config.marketPort, "PULL"),
            ("signals", config.signalPort, "PUB"),
            ("confirm", config.confirmPort, "PULL"), ("signal_in", config.signalInPort, "PULL"),
            ("relay", config.relayPort, "PUB"),
            ("alerts", config.alertPort, "PUB"), ("query", config.queryPort, "REP"),
        ]
        for (name, port, type) in ports {
            report(
                "zmq: \(name) \(port) is \(type)",
                Result { () throws(CheckFailure) -> String in
                    let peer: String
                    do throws(ZMTPProbe.Failure) {
                        peer = try ZMTPProbe.socketType(host: host, port: port, timeout: timeout)
                    } catch { throw CheckFailure(error.message) }
                    guard peer == type else { throw CheckFailure("port \(port) speaks \(peer), expected \(type)") }
                    return "handshake ok"
                })
        }

        // A synthetic EA: HELLO on 5555 and handshake on 5556 → visible in the API → DISCONNECT → offline.
        let uuid = "check_\(getpid())_\(Int.random(in: 100...999))"
        report(
            "synthetic EA: register, disconnect",
            await Result { () async throws(CheckFailure) -> String in
                do {
                    let context = try Context()
                    let dealer = try Socket(context: context, type: .dealer)
                    try dealer.setIdentity(Array(uuid.utf8.dropLast()))
                    try dealer.connect("tcp://\(host):\(config.commandPort)")
                    let push = try Socket(context: context, type: .push)
                    try push.setLinger(.seconds(2))
                    try push.connect("tcp://\(host):\(config.marketPort)")
                    defer {
                        dealer.close()
                        push.close()
                    }
                    let stamp = MetaTraderTime(epochSeconds: Int(Date().timeIntervalSince1970)).description
                    try dealer.send(
                        #"{"type":"HELLO","target_uuid":"\#(uuid)","node_id":"NODE_CHECK_1","account_login":"1","broker":"bitten-check","company":"Bitten","terminal":"check","currency":"USD","balance":0,"equity":0,"leverage":1,"margin":0,"free_margin":0,"margin_level":0,"symbols":1,"version":"check","timestamp":"\#(stamp)"}"#
                    )
                    try push.send(
                        #"{"type":"handshake","deployment_mode":"universal_dealer","node_id":"NODE_CHECK_1","user_uuid":"\#(uuid)","account":1,"broker":"bitten-check","server":"check","chart_symbol":"EURUSD","monitored_symbols":1,"symbol_list":"EURUSD","currency":"USD","balance":0,"equity":0,"leverage":1,"version":"check","socket_type":"DEALER","timestamp":"\#(stamp)"}"#
                    )
                    guard
                        try await Self.waitFor(
                            api + "/nodes/\(uuid)", token: config.apiToken, timeout: timeout,
                            until: { $0["status"] as? String == "online" })
                    else {
                        throw CheckFailure(
                            "the node did not appear online at \(api)/nodes/\(uuid) within \(Int(timeout)) s")
                    }
                    try push.send(
                        #"{"type":"DISCONNECT","deployment_mode":"universal_dealer","node_id":"NODE_CHECK_1","user_uuid":"\#(uuid)","symbols_monitored":1,"ticks_processed":0,"socket_type":"DEALER","timestamp":"\#(stamp)"}"#
                    )
                    guard
                        try await Self.waitFor(
                            api + "/nodes/\(uuid)", token: config.apiToken, timeout: timeout,
                            until: { $0["status"] as? String == "offline" })
                    else {
                        throw CheckFailure(
                            "registered, but DISCONNECT did not take it offline within \(Int(timeout)) s")
                    }
                    return "\(uuid) registered online, then offline after DISCONNECT"
                } catch let failure as CheckFailure { throw failure } catch { throw CheckFailure("\(error)") }
            })

        report(
            "citadel: protection query",
            Result { () throws(CheckFailure) -> String in
                do {
                    let context = try Context()
                    let req = try Socket(context: context, type: .req)
                    try req.setReceiveTimeout(.milliseconds(Int64(timeout * 1000)))
                    try req.connect("tcp://\(host):\(config.queryPort)")
                    defer { req.close() }
                    try req.send(
                        #"{"type":"protection_query","symbol":"EURUSD","direction":"BUY","entry":1.1,"sl":1.098}"#)
                    guard let reply = try req.receive() else {
                        throw CheckFailure("no reply on \(config.queryPort) within \(Int(timeout)) s")
                    }
                    let object = try JSONSerialization.jsonObject(with: Data(reply.frames[0])) as? [String: Any]
                    guard let score = object?["protection_score"] as? Double, object?["error"] == nil else {
                        throw CheckFailure(
                            "answer without a score: \(String(decoding: reply.frames[0], as: UTF8.self).prefix(120))")
                    }
                    return "score \(score) (\(object?["risk_level"] as? String ?? "?"))"
                } catch let failure as CheckFailure { throw failure } catch { throw CheckFailure("\(error)") }
            })

        for path in ["/health", "/nodes", "/services", "/positions", "/alerts", "/openapi.yaml", "/metrics", "/"] {
            report(
                "http: GET \(path)",
                await Result { () async throws(CheckFailure) -> String in
                    guard let url = URL(string: api + path) else { throw CheckFailure("bad URL") }
                    var request = URLRequest(url: url)
                    request.timeoutInterval = timeout
                    if let token = config.apiToken, !token.isEmpty {
                        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
                    }
                    do {
                        let (data, response) = try await URLSession.shared.data(for: request)
                        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
                        guard status == 200 else {
                            throw CheckFailure("HTTP \(status): \(String(decoding: data.prefix(160), as: UTF8.self))")
                        }
                        return "200, \(data.count) bytes"
                    } catch let failure as CheckFailure { throw failure } catch {
                        throw CheckFailure("\(api)\(path): \(error.localizedDescription)")
                    }
                })
        }
        print(failures == 0 ? "all checks passed" : "\(failures) check(s) failed")
        if failures > 0 { throw ExitCode(Int32(min(failures, 125))) }
    }

    static func managedRedisURL(dataDir: String) -> RedisURL? {
        let file = (dataDir as NSString).appendingPathComponent("redis/managed-redis.state")
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        let parts = text.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        guard parts.count == 2 else { return nil }
        return RedisURL(host: "127.0.0.1", port: parts[1])
    }

    static func waitFor(_ url: String, token: String?, timeout: Double, until condition: ([String: Any]) -> Bool)
        async throws -> Bool
    {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard let target = URL(string: url) else { return false }
            var request = URLRequest(url: target)
            if let token, !token.isEmpty { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
            if let (data, response) = try? await URLSession.shared.data(for: request),
                (response as? HTTPURLResponse)?.statusCode == 200,
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], condition(object)
            {
                return true
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        return false
    }
}

struct CheckFailure: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

extension Result where Failure == CheckFailure {
    init(_ body: () throws(CheckFailure) -> Success) {
        do { self = .success(try body()) } catch { self = .failure(error) }
    }

    init(_ body: () async throws(CheckFailure) -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
