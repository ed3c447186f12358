import BittenTestSupport
import Foundation
import Testing

extension EndToEnd {
    /// `bitten check`, `bitten logs` and `bitten stop` against a running `bitten up`.
    @Suite("Operator commands against a running system", .serialized)
    struct OperatorTests {
        /// Runs `bitten ARGS` with the environment of `system`; returns (exit code, output).
        func run(_ arguments: [String], against system: BittenProcess) throws -> (Int32, String) {
            var environment = system.ports.mapValues(String.init)
            environment["BITTEN_DATA_DIR"] = system.dataDir.path
            environment["BITTEN_BIND_HOST"] = "127.0.0.1"
            return try runBitten(arguments, environment: environment)
        }

        @Test func checkPassesOnAHealthySystemAndNamesRedisWhenItIsStopped() async throws {
            let bitten = try BittenProcess()
            defer { bitten.terminateAndWait() }
            try await bitten.waitUntilHealthy()
            let (status, output) = try run(["check", "--timeout", "3"], against: bitten)
            #expect(status == 0, "\(output)")
            let lines = output.split(separator: "\n").filter { $0.hasPrefix("PASS") || $0.hasPrefix("FAIL") }
            #expect(lines.count == 20 && lines.allSatisfy { $0.hasPrefix("PASS") }, "\(output)")
            #expect(output.contains("zmq: command \(bitten.commandPort) is ROUTER"))
            #expect(output.contains("synthetic EA"))
            #expect(
                output.contains("(Redis 7.") || output.contains("(Redis 6."),
                "the Redis check names the server's version: \(output)")

            // Freeze the managed redis-server: connections are accepted but never answered.
            let redis = try #require(bitten.managedRedis)
            kill(redis.pid, SIGSTOP)
            defer { kill(redis.pid, SIGCONT) }
            let (failed, failedOutput) = try run(["check", "--timeout", "2"], against: bitten)
            kill(redis.pid, SIGCONT)
            #expect(failed > 0, "\(failedOutput)")
            let redisLines = failedOutput.split(separator: "\n").filter { $0.contains("redis:") }
            #expect(redisLines.count == 2 && redisLines.allSatisfy { $0.hasPrefix("FAIL") }, "\(failedOutput)")
            #expect(redisLines.allSatisfy { $0.count > 45 }, "each failure gives its reason: \(redisLines)")
            #expect(failedOutput.contains("check(s) failed"))
        }

        @Test func logsShowsPerServiceFilesAndStopEndsTheProcess() async throws {
            let bitten = try BittenProcess()
            defer { bitten.terminateAndWait() }
            try await bitten.waitUntilHealthy()
            let logs = bitten.dataDir.appendingPathComponent("logs")
            let files = try FileManager.default.contentsOfDirectory(atPath: logs.path)
            #expect(files.contains("bitten.log") && files.contains("http.log"), "\(files)")
            let (status, output) = try run(["logs", "http", "-n", "5"], against: bitten)
            #expect(status == 0 && output.contains("HTTP API listening"), "\(output)")
            let (missing, missingOutput) = try run(["logs", "no_such_service"], against: bitten)
            #expect(missing != 0 && missingOutput.contains("available:"))

            let (stopped, stopOutput) = try run(["stop", "--timeout", "20"], against: bitten)
            #expect(stopped == 0, "\(stopOutput)")
            #expect(stopOutput.contains("bitten stopped"))
            #expect(!bitten.isRunning)
            #expect(!FileManager.default.fileExists(atPath: bitten.dataDir.appendingPathComponent("bitten.pid").path))
            let (again, againOutput) = try run(["stop"], against: bitten)
            #expect(again != 0 && againOutput.contains("not running"))
        }
    }
}
