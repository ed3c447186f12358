import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A Redis Cluster on loopback made of local `redis-server` processes (by default three primaries with
/// one replica each), joined with `redis-cli --cluster create`: for tests, and for a one-machine cluster.
public final class LocalRedisCluster: @unchecked Sendable {
    /// Every server, primaries first as `redis-cli` assigned them at creation.
    public let servers: [LocalRedisServer]
    /// Where their data lives.
    public let directory: String
    /// Replicas each primary gets.
    public let replicasPerPrimary: Int

    /// The ports of every server.
    public var ports: [Int] { servers.map(\.port) }

    /// `redis-cluster://127.0.0.1:p1,127.0.0.1:p2,…`.
    public var urlText: String { "redis-cluster://" + ports.map { "127.0.0.1:\($0)" }.joined(separator: ",") }

    /// Starts `primaries × (1 + replicas)` servers on the given ports (free ones when nil), joins them and
    /// waits until every node reports `cluster_state:ok`. When every server's directory already holds a
    /// `nodes.conf` (a cluster that ran there before, on the same ports), the servers are started on it and
    /// rejoin as they were, with their data (`appendOnly`), instead of being joined anew.
    public init(
        primaries: Int = 3, replicasPerPrimary: Int = 1, ports wanted: [Int]? = nil, directory: String,
        appendOnly: Bool = false, logFiles: Bool = false,
        nodeTimeout: Duration = .milliseconds(2000), startTimeout: Duration = .seconds(30)
    ) throws(RedisError) {
        let count = primaries * (1 + replicasPerPrimary)
        let ports = wanted ?? Self.freePorts(count)
        guard ports.count == count, primaries >= 3 else {
            throw RedisError(
                .connectionFailed, "a cluster needs at least 3 primaries and one port per server (\(count))")
        }
        self.directory = directory
        self.replicasPerPrimary = replicasPerPrimary
        let rejoin = ports.allSatisfy { FileManager.default.fileExists(atPath: directory + "/\($0)/nodes.conf") }
        var started: [LocalRedisServer] = []
        do {
            for port in ports {
                let dir = directory + "/\(port)"
                started.append(
                    try LocalRedisServer(
                        port: port, directory: dir, appendOnly: appendOnly,
                        logFile: logFiles ? dir + "/redis-server.log" : nil,
                        extraArguments: [
                            "--cluster-enabled", "yes", "--cluster-config-file", dir + "/nodes.conf",
                            "--cluster-node-timeout",
                            String(
                                nodeTimeout.components.seconds * 1000 + nodeTimeout.components.attoseconds
                                    / 1_000_000_000_000_000),
                            "--cluster-require-full-coverage", "yes",
                        ]))
            }
        } catch {
            for server in started { server.stop() }
            throw error
        }
        servers = started
        do {
            if !rejoin { try Self.create(ports: ports, replicas: replicasPerPrimary) }
            try waitUntilOK(timeout: startTimeout)
        } catch {
            stop()
            throw error
        }
    }

    /// Adopts the servers of a cluster that is already running (left by an earlier `bitten up`).
    public init(adopting servers: [LocalRedisServer], replicasPerPrimary: Int = 1, directory: String) {
        self.servers = servers
        self.replicasPerPrimary = replicasPerPrimary
        self.directory = directory
    }

    /// Ports that are free together with their cluster bus ports (port + 10000): ports 10000–12999, buses
    /// 20000–22999. Both lie below Linux's ephemeral range (32768–60999) and apart from the ports the test
    /// support hands out (`FreePort`, 23000–32767): a cluster started by one test can then never take the port
    /// another test's process was given and has not bound yet (seen as a flaky "Address already in use").
    public static func freePorts(_ count: Int) -> [Int] {
        var chosen: [Int] = []
        var attempts = 0
        while chosen.count < count, attempts < 10_000 {
            attempts += 1
            let port = Int.random(in: 10_000...12_999)
            let taken = chosen.contains {
                abs($0 - port) < 2 || abs($0 + 10_000 - port) < 2 || abs($0 - 10_000 - port) < 2
            }
            if !taken, isFree(port), isFree(port + 10_000) { chosen.append(port) }
        }
        return chosen
    }

    /// Whether redis-server could listen on 127.0.0.1:`port`: nothing listens there (connections of an
    /// earlier server still in TIME_WAIT do not count; redis-server binds with SO_REUSEADDR too).
    public static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        } == 0
    }

    private static func create(ports: [Int], replicas: Int) throws(RedisError) {
        let candidates: [String] = ["/usr/bin/redis-cli", "/usr/local/bin/redis-cli"]
        let cli = candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let cli else {
            throw RedisError(.connectionFailed, "redis-cli not found: install the Debian package redis-tools")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: cli)
        process.arguments =
            ["--cluster", "create"] + ports.map { "127.0.0.1:\($0)" } + [
                "--cluster-replicas", String(replicas), "--cluster-yes",
            ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do { try process.run() } catch { throw RedisError(.connectionFailed, "could not run \(cli): \(error)") }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw RedisError(.connectionFailed, "redis-cli --cluster create failed: \(text.suffix(400))")
        }
    }

    /// Waits until every running node says `cluster_state:ok` and the first one's map shows every
    /// primary's replicas (they join a moment after the slots are assigned).
    public func waitUntilOK(timeout: Duration = .seconds(30)) throws(RedisError) {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            let running = servers.filter(\.isRunning)
            let ok = running.allSatisfy { server in
                let info =
                    (try? RedisConnection(url: server.url, timeout: .milliseconds(300)).command(["CLUSTER", "INFO"]))?
                    .string ?? ""
                return info.contains("cluster_state:ok")
            }
            let replicated =
                running.first.flatMap { server -> Bool? in
                    guard
                        let reply = try? RedisConnection(url: server.url, timeout: .milliseconds(300)).command([
                            "CLUSTER", "SLOTS",
                        ]),
                        let map = try? ClusterTopology(slotsReply: reply, askedHost: "127.0.0.1")
                    else { return nil }
                    return map.ranges.allSatisfy {
                        $0.replicas.count >= (running.count == servers.count ? replicasPerPrimary : 0)
                    }
                } ?? false
            if ok && replicated { return }
            usleep(100_000)
        }
        throw RedisError(.unavailable, "the local cluster did not reach cluster_state:ok within \(timeout)")
    }

    /// Stops every server.
    public func stop() {
        for server in servers { server.stop() }
    }

    deinit { stop() }
}
