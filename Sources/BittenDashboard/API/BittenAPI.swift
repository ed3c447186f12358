import BittenCore
import BittenServices
import Foundation
import OpenAPIRuntime
import ServiceLifecycle
import Synchronization

/// The HTTP API: the handlers of the operations that `openapi.yaml` declares (the interface, `APIProtocol`, is
/// generated from it). Each handler reads and changes the system through `ports` only, so the handler tests run
/// against in-memory fakes of them.
///
/// Errors are thrown as `APIError` (the `{"error":{"code","message"}}` body with its status); a parameter or body
/// that does not match the document never reaches a handler (the generated code refuses it, see `HTTPErrors`).
struct BittenAPI: APIProtocol {
    let ports: APIPorts
    let snapshots = SnapshotCache()

    init(ports: APIPorts) { self.ports = ports }

    // MARK: the process

    func getHealth(_ input: Operations.GetHealth.Input) async throws -> Operations.GetHealth.Output {
        let report = await ports.system.health()
        let health: Components.Schemas.Health = try Contract.convert(report)
        return report.redis.reachable
            ? .ok(.init(body: .json(health))) : .serviceUnavailable(.init(body: .json(health)))
    }

    func getServices(_ input: Operations.GetServices.Input) async throws -> Operations.GetServices.Output {
        .ok(.init(body: .json(.init(services: try Contract.convert(ports.system.services)))))
    }

    func getMetrics(_ input: Operations.GetMetrics.Input) async throws -> Operations.GetMetrics.Output {
        .ok(.init(body: .plainText(HTTPBody(ports.system.metricsText()))))
    }

    func getOpenAPIDocument(_ input: Operations.GetOpenAPIDocument.Input) async throws
        -> Operations.GetOpenAPIDocument.Output
    {
        .ok(.init(body: .yaml(HTTPBody(OpenAPIDocument.yaml))))
    }

    func listAlerts(_ input: Operations.ListAlerts.Input) async throws -> Operations.ListAlerts.Output {
        let query = input.query
        let page = try Page(limit: query.limit, offset: query.offset)
        let kind = try Self.bounded(query.kind, "kind", max: 64)
        let symbol = try Self.bounded(query.symbol, "symbol", max: 32)
        // Filters apply after the read: read enough that a page of the filtered list can be cut.
        let filtered = kind != nil || symbol != nil
        var alerts = await ports.system.alerts(
            source: query.source?.rawValue, limit: filtered ? Page.maxLimit + page.end : page.end)
        if let kind { alerts = alerts.filter { $0.kind == kind } }
        if let symbol { alerts = alerts.filter { $0.symbol == symbol } }
        return .ok(
            .init(
                body: .json(
                    .init(limit: page.limit, offset: page.offset, alerts: try page.cut(alerts).map(Self.alert)))))
    }

    static func alert(_ record: AlertRecord) throws -> Components.Schemas.Alert {
        guard let source = Components.Schemas.Alert.SourcePayload(rawValue: record.source) else {
            throw Contract.Violation(type: "Alert", reason: "source '\(record.source)' is not system or citadel")
        }
        return .init(
            source: source, kind: record.kind, symbol: record.symbol, uuid: record.uuid, message: record.message,
            timestamp: record.timestamp)
    }

    // MARK: the dashboard's data

    func getSnapshot(_ input: Operations.GetSnapshot.Input) async throws -> Operations.GetSnapshot.Output {
        .ok(.init(body: .json(try await snapshot().value)))
    }

    /// Server-Sent Events: `retry: 3000`, then one `snapshot` event per interval until the client goes away.
    func streamEvents(_ input: Operations.StreamEvents.Input) async throws -> Operations.StreamEvents.Output {
        let seconds = input.query.interval ?? 2
        guard (1...60).contains(seconds) else {
            throw APIError(.badRequest, code: "bad_parameter", "interval must be an integer in 1...60")
        }
        let (stream, continuation) = AsyncStream<ArraySlice<UInt8>>.makeStream(bufferingPolicy: .bufferingNewest(4))
        let api = self
        let producer = Task {
            // Reconnect after 3 s if the stream drops; the page falls back to polling if it cannot.
            continuation.yield(ArraySlice("retry: 3000\n\n".utf8))
            // The stream ends when the server shuts down: an open dashboard must not hold a stop for an interval.
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let text = (try? await api.snapshot().text) ?? "{}"
                continuation.yield(ArraySlice("event: snapshot\ndata: \(text)\n\n".utf8))
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(seconds)) }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in producer.cancel() }
        return .ok(.init(body: .textEventStream(HTTPBody(stream, length: .unknown, iterationBehavior: .single))))
    }

    /// The dashboard's snapshot, built at most once a second and shared by every open dashboard (20 dashboards
    /// cost the server about what one does).
    func snapshot() async throws -> (value: Components.Schemas.Snapshot, text: String) {
        let now = Date().timeIntervalSince1970
        if let cached = snapshots.fresh(at: now) { return (cached.value, cached.text) }
        let value: Components.Schemas.Snapshot = try Contract.convert(await DashboardSnapshot.build(ports, now: now))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = String(decoding: try encoder.encode(value), as: UTF8.self)
        snapshots.store(at: now, value: value, text: text)
        return (value, text)
    }
}

/// The last snapshot and when it was built.
final class SnapshotCache: Sendable {
    private let last = Mutex<(at: Double, value: Components.Schemas.Snapshot, text: String)?>(nil)

    /// The cached snapshot when it is younger than a second.
    func fresh(at now: Double) -> (value: Components.Schemas.Snapshot, text: String)? {
        last.withLock { cached in cached.flatMap { now - $0.at < 1 ? ($0.value, $0.text) : nil } }
    }

    func store(at now: Double, value: Components.Schemas.Snapshot, text: String) {
        last.withLock { $0 = (now, value, text) }
    }
}
