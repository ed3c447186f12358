import BittenCore
import BittenServices
import Foundation

/// `/signals/{id}/trace`, `/fires/{fire_id}/trace`: the flight recorder.
extension BittenAPI {
    func traces() throws -> any TraceSource {
        guard let traces = ports.traces else {
            throw APIError(.serviceUnavailable, code: "unavailable", "the flight recorder needs Redis")
        }
        return traces
    }

    func getFireTrace(_ input: Operations.GetFireTrace.Input) async throws -> Operations.GetFireTrace.Output {
        let id = try Self.validRecordID(input.path.fireId, "fire")
        let steps = try await stored { try await traces().fire(id) }
        guard !steps.isEmpty else { throw APIError(.notFound, code: "trace_not_found", "no trace of fire \(id)") }
        return .ok(.init(body: .json(Self.fireTrace(id, steps))))
    }

    func getSignalTrace(_ input: Operations.GetSignalTrace.Input) async throws -> Operations.GetSignalTrace.Output {
        let id = try Self.validRecordID(input.path.id, "signal")
        let page = try Page(limit: input.query.limit, offset: input.query.offset)
        let traces = try traces()
        let read = try await stored { try await traces.signal(id, limit: page.limit, offset: page.offset) }
        guard !read.steps.isEmpty || read.totalFires > 0 else {
            throw APIError(.notFound, code: "trace_not_found", "no trace of signal \(id)")
        }
        var fires: [Components.Schemas.FireTrace] = []
        for fire in read.fires { fires.append(Self.fireTrace(fire, try await stored { try await traces.fire(fire) })) }
        return .ok(
            .init(
                body: .json(
                    .init(
                        signalId: id, steps: read.steps.map(Self.step), fires: fires, totalFires: read.totalFires,
                        limit: page.limit, offset: page.offset))))
    }

    private func stored<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError(.serviceUnavailable, code: "store_unavailable", "the trace could not be read: \(error)")
        }
    }

    static func fireTrace(_ id: String, _ steps: [TraceReader.Entry]) -> Components.Schemas.FireTrace {
        .init(
            fireId: id, signalId: steps.lazy.compactMap { $0.data["signal_id"] }.first, steps: steps.map(Self.step))
    }

    static func step(_ entry: TraceReader.Entry) -> Components.Schemas.TraceStep {
        .init(step: entry.step, at: entry.at, data: .init(additionalProperties: entry.data))
    }
}
