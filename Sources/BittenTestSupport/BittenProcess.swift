import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The real `bitten` executable run as a child process by a test, with its own data directory and
/// free ports, stopped with SIGTERM.
public final class BittenProcess: @unchecked Sendable {
    /// Ports by setting name (BITTEN_HTTP_PORT …).
    public private(set) var ports: [String: Int]
    /// Its data directory.
    public let dataDir: URL
    /// Where its standard output and error go.
    public let logFile: URL
    private var process = Process()
    private let arguments: [String]
    private let extra: [String: String]
    private let portsChosenByCaller: Bool
    static let portNames = [
        "BITTEN_HTTP_PORT", "BITTEN_COMMAND_PORT", "BITTEN_MARKET_PORT", "BITTEN_SIGNAL_PORT",
        "BITTEN_CONFIRM_PORT", "BITTEN_SIGNAL_IN_PORT", "BITTEN_RELAY_PORT", "BITTEN_ALERT_PORT",
        "BITTEN_QUERY_PORT",
    ]

    /// `http://127.0.0.1:PORT`.
    public var httpBase: String { "http://127.0.0.1:\(ports["BITTEN_HTTP_PORT"] ?? 0)" }
    /// The EA command port (5555) it bound.
    public var commandPort: Int { ports["BITTEN_COMMAND_PORT"] ?? 0 }
    /// The market-data port (5556).
    public var marketPort: Int { ports["BITTEN_MARKET_PORT"] ?? 0 }
    /// The confirmation port (5558).
    public var confirmPort: Int { ports["BITTEN_CONFIRM_PORT"] ?? 0 }
    /// The relay port (5560).
    public var relayPort: Int { ports["BITTEN_RELAY_PORT"] ?? 0 }
    /// The alert port (5565).
    public var alertPort: Int { ports["BITTEN_ALERT_PORT"] ?? 0 }
    /// The CITADEL query port (5566).
    public var queryPort: Int { ports["BITTEN_QUERY_PORT"] ?? 0 }
    /// The process id.
    public var pid: Int32 { process.processIdentifier }

    /// The `bitten` binary next to the test bundle (SwiftPM builds both into the same folder).
    public static var binary: String {
        if let custom = ProcessInfo.processInfo.environment["BITTEN_BIN"] { return custom }
        let exe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // Inside BittenPackageTests.xctest/… on some layouts.
        while dir.lastPathComponent.hasSuffix(".xctest") || dir.lastPathComponent == "Contents"
            || dir.lastPathComponent == "MacOS"
        {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("bitten").path
    }

    /// Starts `bitten ARGS` (default `up`) with free ports and the given extra environment.
    /// `ports`: reuse these (a restart on the same ports); otherwise free ones are picked.
    public init(
        arguments: [String] = ["up"], environment extra: [String: String] = [:], dataDir: URL? = nil,
        ports reused: [String: Int]? = nil
    ) throws {
        ports = reused ?? Dictionary(uniqueKeysWithValues: zip(Self.portNames, FreePort.several(Self.portNames.count)))
        portsChosenByCaller = reused != nil
        self.arguments = arguments
        self.extra = extra
        self.dataDir =
            dataDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("bitten-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.dataDir, withIntermediateDirectories: true)
        logFile = self.dataDir.appendingPathComponent("bitten.out")
        FileManager.default.createFile(atPath: logFile.path, contents: nil)
        try launch()
    }

    private func launch() throws {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("BITTEN_") }
        for (name, port) in ports { environment[name] = String(port) }
        environment["BITTEN_DATA_DIR"] = self.dataDir.path
        environment["BITTEN_BIND_HOST"] = "127.0.0.1"
        environment["SWIFT_BACKTRACE"] = "enable=no"
        for (key, value) in extra { environment[key] = value }
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        process.environment = environment
        let handle = try FileHandle(forWritingTo: logFile)
        try handle.seekToEnd()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// Whether the process is still running (checked with kill 0, which Foundation's reaping cannot confuse).
    public var isRunning: Bool {
        let pid = process.processIdentifier
        guard pid > 0, kill(pid, 0) == 0 else { return false }
        // A killed child stays a zombie until Foundation reaps it: that is not running.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
        return state != "Z" && state != "X"
    }

    /// Waits until `/health` answers (any status), or throws with the log's tail.
    public func waitUntilHealthy(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        var relaunches = 0
        while ContinuousClock.now < deadline {
            if !isRunning {
                // A parallel test took one of the ports between the check and the bind: try others.
                if !portsChosenByCaller, relaunches < 3, logTail(5).contains("Address already in use") {
                    relaunches += 1
                    ports = Dictionary(
                        uniqueKeysWithValues: zip(Self.portNames, FreePort.several(Self.portNames.count)))
                    try launch()
                    continue
                }
                throw TestSupportError("bitten exited early:\n\(logTail())")
            }
            if let (status, _) = try? await HTTP.get(httpBase + "/health"), status == 200 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestSupportError("bitten /health did not answer 200 within \(timeout):\n\(logTail())")
    }

    /// Sends SIGTERM and waits for the exit; returns how long it took, or nil if it did not exit in `timeout`.
    public func terminate(timeout: Duration = .seconds(10)) async -> Duration? {
        let start = ContinuousClock.now
        kill(process.processIdentifier, SIGTERM)
        while process.isRunning {
            if ContinuousClock.now - start > timeout { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return ContinuousClock.now - start
    }

    /// SIGTERM, then waits (blocking, at most `seconds`) for a graceful exit, so that the managed
    /// Redis is stopped too; for `defer` blocks, which cannot await. A process still running then is
    /// killed (SIGKILL): left alive, its Redis clients would go on reconnecting to a port that a later
    /// test's server may have taken.
    public func terminateAndWait(seconds: Double = 10) {
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        let killed = Date().addingTimeInterval(5)
        while process.isRunning && Date() < killed { Thread.sleep(forTimeInterval: 0.02) }
    }

    /// The last lines of its output.
    public func logTail(_ lines: Int = 40) -> String {
        let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// The managed Redis (pid, port) from the state file, if any.
    public var managedRedis: (pid: Int32, port: Int)? {
        let file = dataDir.appendingPathComponent("redis/managed-redis.state")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return nil }
        let parts = text.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        guard parts.count == 2 else { return nil }
        return (Int32(parts[0]), parts[1])
    }
}

/// A tiny HTTP client for tests (URLSession).
public enum HTTP {
    /// GET; returns the status code and body.
    public static func get(_ url: String) async throws -> (Int, Data) {
        guard let target = URL(string: url) else { throw TestSupportError("bad URL \(url)") }
        var request = URLRequest(url: target)
        request.timeoutInterval = 5
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    /// Any method with an optional body; returns the status code and body.
    public static func send(
        _ method: String, _ url: String, body: String? = nil,
        headers: [String: String] = ["Content-Type": "application/json"]
    ) async throws -> (Int, Data) {
        guard let target = URL(string: url) else { throw TestSupportError("bad URL \(url)") }
        var request = URLRequest(url: target)
        request.httpMethod = method
        request.timeoutInterval = 10
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let body { request.httpBody = Data(body.utf8) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    /// Sends and decodes a JSON object reply.
    public static func sendJSON(
        _ method: String, _ url: String, body: String? = nil,
        headers: [String: String] = ["Content-Type": "application/json"]
    ) async throws -> (Int, [String: Any]) {
        let (status, data) = try await send(method, url, body: body, headers: headers)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TestSupportError("\(url) did not return a JSON object: \(String(decoding: data, as: UTF8.self))")
        }
        return (status, object)
    }

    /// GET and decode a JSON object.
    public static func json(_ url: String) async throws -> (Int, [String: Any]) {
        let (status, data) = try await get(url)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TestSupportError("\(url) did not return a JSON object: \(String(decoding: data, as: UTF8.self))")
        }
        return (status, object)
    }
}

/// Whether a process id exists.
public func processExists(_ pid: Int32) -> Bool { kill(pid, 0) == 0 || errno == EPERM }
