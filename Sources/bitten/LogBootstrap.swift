import Foundation
import Logging
import Metrics
import Prometheus
import Synchronization

/// The process-wide logging and metrics set-up, done once in the executable.
enum Observability {
    static let registry = PrometheusCollectorRegistry()

    /// Logs to standard error in `format`; with `logDirectory`, each service also gets its own file
    /// there (`bitten.telemetry` → `telemetry.log`), read by `bitten logs`.
    static func bootstrap(format: ConfigOptions.LogFormat, level: String, logDirectory: String? = nil) {
        let logLevel = Logger.Level(rawValue: level) ?? .info
        let files = logDirectory.flatMap { try? ServiceLogFiles(directory: $0) }
        LoggingSystem.bootstrap { label in
            var console: any LogHandler
            switch format {
            case .text: console = StreamLogHandler.standardError(label: label)
            case .json: console = JSONLogHandler(label: label)
            }
            console.logLevel = logLevel
            guard let files else { return console }
            var file = ServiceFileLogHandler(label: label, files: files)
            file.logLevel = logLevel
            return MultiplexLogHandler([console, file])
        }
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    static func metricsText() -> String { registry.emitToString() }
}

/// Writes one JSON object per line to standard error.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
        file: String, function: String, line: UInt
    ) {
        var fields: [String: String] = [
            "ts": Date().formatted(.iso8601), "level": level.rawValue, "label": label,
            "msg": message.description, "source": source,
        ]
        for (key, value) in metadata.merging(explicit ?? [:], uniquingKeysWith: { $1 }) { fields[key] = "\(value)" }
        guard var data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]) else { return }
        data.append(10)
        FileHandle.standardError.write(data)
    }
}

/// One append-only log file per service under the data directory's `logs/`; a file past 20 MB is
/// moved to `NAME.log.1` and started again.
final class ServiceLogFiles: Sendable {
    let directory: String
    private let handles = Mutex<[String: FileHandle]>([:])
    static let maxBytes: UInt64 = 20 * 1024 * 1024

    init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// `bitten.telemetry` → `telemetry`, `bitten` → `bitten`.
    static func service(for label: String) -> String {
        let parts = label.split(separator: ".")
        return parts.count > 1 ? String(parts[1]) : (parts.first.map(String.init) ?? "bitten")
    }

    func write(_ line: String, service: String) {
        handles.withLock { handles in
            let path = (directory as NSString).appendingPathComponent(service + ".log")
            if handles[service] == nil {
                if !FileManager.default.fileExists(atPath: path) {
                    FileManager.default.createFile(atPath: path, contents: nil)
                }
                handles[service] = FileHandle(forWritingAtPath: path)
                _ = try? handles[service]?.seekToEnd()
            }
            guard let handle = handles[service] else { return }
            handle.write(Data(line.utf8))
            if let size = try? handle.offset(), size > Self.maxBytes {
                try? handle.close()
                try? FileManager.default.removeItem(atPath: path + ".1")
                try? FileManager.default.moveItem(atPath: path, toPath: path + ".1")
                handles[service] = nil
            }
        }
    }
}

/// Text lines into the service's own file.
struct ServiceFileLogHandler: LogHandler {
    let label: String
    let files: ServiceLogFiles
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
        file: String, function: String, line: UInt
    ) {
        let merged = metadata.merging(explicit ?? [:], uniquingKeysWith: { $1 })
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let stamp = Date().formatted(.iso8601)
        files.write(
            "\(stamp) \(level) \(label): \(message)\(fields.isEmpty ? "" : " " + fields)\n",
            service: ServiceLogFiles.service(for: label))
    }
}
