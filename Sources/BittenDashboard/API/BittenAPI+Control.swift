import BittenCore
import BittenServices
import Foundation

/// `/control`: the trading state of the system and of each user (halt, close-only, resume).
extension BittenAPI {
    func systemControl() throws -> any SystemControl {
        guard let control = ports.control else {
            throw APIError(.serviceUnavailable, code: "unavailable", "the trading state needs Redis")
        }
        return control
    }

    func getControl(_ input: Operations.GetControl.Input) async throws -> Operations.GetControl.Output {
        let control = try systemControl()
        let system: TradingControl
        let acks: [TradingControlStore.Acknowledgement]
        do {
            system = try await control.read()
            acks = try await control.acknowledgements()
        } catch {
            throw APIError(
                .serviceUnavailable, code: "store_unavailable", "the trading state could not be read: \(error)")
        }
        var users: [Components.Schemas.UserTrading] = []
        if let trade = ports.trade, let all = try? await trade.restrictedUsers() {
            for user in all {
                guard let trading = user.trading, trading.effective(at: Date().timeIntervalSince1970) != .active else {
                    continue
                }
                users.append(.init(uuid: user.uuid, trading: Self.view(trading, system: false)))
            }
        }
        return .ok(
            .init(
                body: .json(
                    .init(
                        system: Self.view(system, system: true),
                        processes: acks.map { .init(process: $0.process, version: $0.version, at: $0.at) },
                        users: users))))
    }

    func haltTrading(_ input: Operations.HaltTrading.Input) async throws -> Operations.HaltTrading.Output {
        .ok(
            .init(
                body: .json(
                    try await change(
                        to: .halted,
                        input.body.map {
                            switch $0 {
                            case .json(let body): body
                            }
                        }))))
    }

    func closeOnlyTrading(_ input: Operations.CloseOnlyTrading.Input) async throws
        -> Operations.CloseOnlyTrading.Output
    {
        .ok(
            .init(
                body: .json(
                    try await change(
                        to: .closeOnly,
                        input.body.map {
                            switch $0 {
                            case .json(let body): body
                            }
                        }))))
    }

    func resumeTrading(_ input: Operations.ResumeTrading.Input) async throws -> Operations.ResumeTrading.Output {
        .ok(
            .init(
                body: .json(
                    try await change(
                        to: .active,
                        input.body.map {
                            switch $0 {
                            case .json(let body): body
                            }
                        }))))
    }

    /// Sets the system's state (and waits for the trade processes to enforce it), or one user's.
    private func change(to state: TradingState, _ body: Components.Schemas.ControlChange?) async throws
        -> Components.Schemas.ControlResult
    {
        let closeAll = body?.closeAll ?? false
        if closeAll, state == .active {
            throw APIError(
                .unprocessableContent, code: "close_all_on_resume", "close_all goes with halt or close-only, not resume"
            )
        }
        let reason = try Self.bounded(body?.reason, "reason", max: 200) ?? ""
        let by = try Self.bounded(body?.by, "by", max: 64) ?? "api"
        let control = TradingControl(
            state: state, reason: reason, by: by, at: Date().timeIntervalSince1970, closeAll: closeAll)
        if let user = body?.userUuid {
            let uuid = try Self.validUUID(user)
            do {
                let closes = try await trade().setTrading(userUUID: uuid, control: control)
                var shown = control
                shown.closeAll = closeAll
                return .init(
                    userUuid: uuid, trading: Self.view(shown, system: false), acknowledged: [], waiting: [],
                    closes: try Contract.convert(closes))
            } catch let refusal as FireRefusal {
                throw APIError(refusal)
            }
        }
        let system = try systemControl()
        let stored: TradingControl
        do {
            stored = try await system.set(control)
        } catch {
            throw APIError(.serviceUnavailable, code: "store_unavailable", "the trading state was not stored: \(error)")
        }
        let (acknowledged, waiting) = await system.awaitAcknowledgements(of: stored.version, timeout: 3)
        return .init(
            trading: Self.view(stored, system: true), acknowledged: acknowledged, waiting: waiting, closes: [])
    }

    static func view(_ control: TradingControl, system: Bool) -> Components.Schemas.TradingState {
        .init(
            state: .init(rawValue: control.state.rawValue) ?? .halted, reason: control.reason, by: control.by,
            at: control.at, until: control.until, version: system ? control.version : nil,
            closeAll: system ? control.closeAll : nil)
    }
}
