import Foundation
import Logging
import Metrics
import Prometheus

/// The process-wide logging and metrics set-up, done once in the executable.
enum Observability {
    static let registry = PrometheusCollectorRegistry()

    static func bootstrap(format: ConfigOptions.LogFormat, level: String) {
        let logLevel = Logger.Level(rawValue: level) ?? .info
        switch format {
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = logLevel
                return handler
            }
        case .json:
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label)
                handler.logLevel = logLevel
                return handler
            }
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

    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        var fields: [String: String] = [
            "ts": ISO8601DateFormatter().string(from: Date()), "level": level.rawValue, "label": label,
            "msg": message.description, "source": source,
        ]
        for (key, value) in metadata.merging(explicit ?? [:], uniquingKeysWith: { $1 }) { fields[key] = "\(value)" }
        guard var data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]) else { return }
        data.append(10)
        FileHandle.standardError.write(data)
    }
}
