import ArgumentParser
import BittenCore
import BittenServices
import Foundation
import Redis
import ZeroMQ

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `bitten stop`: a graceful stop of the `bitten up` whose pid file is in the data directory.
struct Stop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop a running bitten gracefully (SIGTERM via its pid file, then wait).")

    @OptionGroup var options: ConfigOptions
    @Option(help: "Seconds to wait for it to finish.") var timeout = 30.0

    func run() async throws {
        let config = try resolveOrExit(options)
        let pidFile = (config.dataDir as NSString).appendingPathComponent("bitten.pid")
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            print("bitten is not running (no pid file at \(pidFile))")
            throw ExitCode(1)
        }
        guard kill(pid, 0) == 0 else {
            print("bitten is not running (pid \(pid) from \(pidFile) is gone); removing the stale pid file")
            try? FileManager.default.removeItem(atPath: pidFile)
            throw ExitCode(1)
        }
        guard kill(pid, SIGTERM) == 0 else {
            print("cannot signal pid \(pid): \(String(cString: strerror(errno)))")
            throw ExitCode(1)
        }
        print("sent SIGTERM to bitten (pid \(pid)); waiting for it to drain and stop…")
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if kill(pid, 0) != 0 {
                print("bitten stopped")
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        print("bitten (pid \(pid)) did not stop within \(Int(timeout)) s")
        throw ExitCode(1)
    }
}

/// `bitten logs [SERVICE]`: the tail of the per-service log files in `$BITTEN_DATA_DIR/logs`.
struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the tail of the per-service logs (data dir logs/SERVICE.log).")

    @OptionGroup var options: ConfigOptions
    @Argument(help: "A service (telemetry, gateway, trade, citadel, http, …); all when omitted.") var service: String?
    @Option(name: [.customShort("n"), .long], help: "Lines per file.") var lines = 50
    @Flag(name: .shortAndLong, help: "Keep printing new lines.") var follow = false

    func run() async throws {
        let config = try resolveOrExit(options)
        let directory = (config.dataDir as NSString).appendingPathComponent("logs")
        let available = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".log") }.map { String($0.dropLast(4)) }.sorted()
        guard !available.isEmpty else {
            print("no logs in \(directory) (has bitten up run with this data directory?)")
            throw ExitCode(1)
        }
        let chosen: [String]
        if let service {
            guard available.contains(service) else {
                print("no log for '\(service)'; available: \(available.joined(separator: ", "))")
                throw ExitCode(1)
            }
            chosen = [service]
        } else {
            chosen = available
        }
        var offsets: [String: UInt64] = [:]
        for name in chosen {
            let path = (directory as NSString).appendingPathComponent(name + ".log")
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            if chosen.count > 1 { print("==> \(name) <==") }
            for line in text.split(separator: "\n", omittingEmptySubsequences: true).suffix(lines) { print(line) }
            offsets[name] = UInt64(text.utf8.count)
        }
        guard follow else { return }
        while !Task.isCancelled {
            try await Task.sleep(for: .milliseconds(500))
            for name in chosen {
                let path = (directory as NSString).appendingPathComponent(name + ".log")
                guard let handle = FileHandle(forReadingAtPath: path) else { continue }
                defer { try? handle.close() }
                let size = (try? handle.seekToEnd()) ?? 0
                var offset = offsets[name] ?? 0
                if size < offset { offset = 0 }  // rotated
                guard size > offset else { continue }
                try? handle.seek(toOffset: offset)
                let data = handle.readData(ofLength: Int(size - offset))
                offsets[name] = size
                for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                    print(chosen.count > 1 ? "[\(name)] \(line)" : String(line))
                }
            }
        }
    }
}

/// `bitten keys generate | allow KEY | list`: CURVE keys for the EA-facing sockets.
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "CURVE keys: generate the server's pair, allow a client's public key, list them.",
        subcommands: [Generate.self, Allow.self, List.self])

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the server key pair in the data directory (secret key 0600).")
        @OptionGroup var options: ConfigOptions
        @Flag(help: "Replace an existing key pair (every EA then needs the new public key).") var force = false

        func run() async throws {
            let config = try resolveOrExit(options)
            let secretPath = CurveFiles.secretKey(config.dataDir)
            if FileManager.default.fileExists(atPath: secretPath) && !force {
                print("a server key already exists at \(secretPath); use --force to replace it")
                throw ExitCode(1)
            }
            try FileManager.default.createDirectory(
                atPath: CurveFiles.directory(config.dataDir), withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
            let pair = try CurveKeyPair.generate()
            guard
                FileManager.default.createFile(
                    atPath: secretPath, contents: Data((pair.secretKey + "\n").utf8),
                    attributes: [.posixPermissions: 0o600])
            else {
                print("cannot write \(secretPath)")
                throw ExitCode(1)
            }
            _ = chmod(secretPath, 0o600)
            try (pair.publicKey + "\n").write(
                toFile: CurveFiles.publicKey(config.dataDir), atomically: true, encoding: .utf8)
            print("server public key (give it to the EAs): \(pair.publicKey)")
            print("secret key: \(secretPath) (mode 600); turn CURVE on with BITTEN_CURVE=on")
        }
    }

    struct Allow: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a client public key to the allow-list file (read again within seconds, no restart).")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "The client's Z85 public key (40 characters).") var key: String

        func run() async throws {
            let config = try resolveOrExit(options)
            guard key.count == 40, key.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
                print("'\(key)' is not a 40-character Z85 key")
                throw ExitCode(1)
            }
            let path = CurveFiles.allowList(config.dataDir)
            try FileManager.default.createDirectory(
                atPath: CurveFiles.directory(config.dataDir), withIntermediateDirectories: true)
            var text =
                (try? String(contentsOfFile: path, encoding: .utf8))
                ?? "# Z85 public keys of the EAs allowed to connect, one per line\n"
            if CurveFiles.parseAllowList(text).contains(key) {
                print("already allowed")
                return
            }
            if !text.hasSuffix("\n") { text += "\n" }
            text += key + "\n"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            print(
                "allowed; a running bitten picks it up within 2 s (or add it to the Redis set \(CurveFiles.redisSet))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the server public key and the allowed client keys in the file.")
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            let config = try resolveOrExit(options)
            let publicKey = (try? String(contentsOfFile: CurveFiles.publicKey(config.dataDir), encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            print("server public key: \(publicKey ?? "none (run bitten keys generate)")")
            let allowed = CurveFiles.parseAllowList(
                (try? String(contentsOfFile: CurveFiles.allowList(config.dataDir), encoding: .utf8)) ?? "")
            print("allowed client keys in \(CurveFiles.allowList(config.dataDir)): \(allowed.count)")
            for key in allowed.sorted() { print("  \(key)") }
        }
    }
}
