import BittenCore
import BittenServices
import Foundation

/// `/users`: the users, their tier, display name and risk override.
extension BittenAPI {
    func listUsers(_ input: Operations.ListUsers.Input) async throws -> Operations.ListUsers.Output {
        let page = try Page(limit: input.query.limit, offset: input.query.offset)
        let trade = try trade()
        var users: [Components.Schemas.User] = []
        for user in page.cut(try await trade.users().sorted { $0.uuid < $1.uuid }) {
            users.append(try await view(user, trade))
        }
        return .ok(.init(body: .json(.init(limit: page.limit, offset: page.offset, users: users))))
    }

    func getUser(_ input: Operations.GetUser.Input) async throws -> Operations.GetUser.Output {
        let uuid = try Self.validUUID(input.path.uuid)
        let trade = try trade()
        guard let user = try await trade.user(uuid) else {
            throw APIError(.notFound, code: "user_not_found", "no user \(uuid)")
        }
        return .ok(.init(body: .json(try await view(user, trade))))
    }

    func createUser(_ input: Operations.CreateUser.Input) async throws -> Operations.CreateUser.Output {
        guard case .json(let body) = input.body else { preconditionFailure("the only body is JSON") }
        let trade = try trade()
        let uuid = try Self.validUUID(body.uuid)
        let change = try Self.change(tier: body.tier, displayName: body.displayName, riskOverride: body.riskOverride)
        if try await trade.user(uuid) != nil {
            throw APIError(.conflict, code: "user_exists", "user \(uuid) exists; PUT /users/\(uuid) changes it")
        }
        let user = UserRecord(
            uuid: uuid, tier: change.tier ?? .recruit, displayName: change.displayName ?? uuid,
            riskOverride: change.risk.flatMap { $0 }, createdAt: Date().timeIntervalSince1970)
        try await trade.save(user)
        return .created(.init(body: .json(try await view(user, trade))))
    }

    func updateUser(_ input: Operations.UpdateUser.Input) async throws -> Operations.UpdateUser.Output {
        guard case .json(let body) = input.body else { preconditionFailure("the only body is JSON") }
        let uuid = try Self.validUUID(input.path.uuid)
        let change = try Self.change(tier: body.tier, displayName: body.displayName, riskOverride: body.riskOverride)
        let trade = try trade()
        guard var user = try await trade.user(uuid) else {
            throw APIError(.notFound, code: "user_not_found", "no user \(uuid)")
        }
        if let tier = change.tier { user.tier = tier }
        if let name = change.displayName { user.displayName = name }
        if let risk = change.risk { user.riskOverride = risk }
        if let limits = body.limits {
            let changed = try Self.limits(limits, over: user.limits ?? .none)
            user.limits = changed.isEmpty ? nil : changed
        }
        try await trade.save(user)
        return .ok(.init(body: .json(try await view(user, trade))))
    }

    /// A user as the API shows it: with the tier's slots and risk, and the slots in use.
    private func view(_ user: UserRecord, _ trade: any TradeDesk) async throws -> Components.Schemas.User {
        let rule = trade.tiers.rule(user.tier)
        return .init(
            uuid: user.uuid, tier: user.tier.rawValue, displayName: user.displayName, riskOverride: user.riskOverride,
            createdAt: user.createdAt, slots: rule.slots, slotsUsed: try await trade.slotsUsed(user.uuid),
            maxRiskPercent: rule.maxRiskPercent, trading: user.trading.map { Self.view($0, system: false) },
            limits: user.limits.map(Self.view),
            effectiveLimits: Self.view((user.limits ?? .none).over(trade.riskLimits[user.tier] ?? .none)),
            risk: user.risk.map {
                .init(
                    day: $0.day, startBalance: $0.startBalance, equityPeak: $0.equityPeak, trades: $0.trades,
                    lossStreak: $0.lossStreak, lastLossAt: $0.lastLossAt)
            })
    }

    static func view(_ limits: RiskLimits) -> Components.Schemas.RiskLimits {
        .init(
            dailyLoss: limits.dailyLossPercent, drawdown: limits.drawdownPercent, openRisk: limits.openRiskPercent,
            exposureLots: limits.exposureLots, tradesPerDay: limits.tradesPerDay, lossStreak: limits.lossStreak,
            cooldownMinutes: limits.cooldownMinutes)
    }

    /// A change of a user's own limits: a number sets one, 0 clears it (the tier's default applies again).
    static func limits(_ change: Components.Schemas.UserChange.LimitsPayload, over current: RiskLimits) throws
        -> RiskLimits
    {
        func set(_ value: Int?, _ old: Int?, _ name: String, max: Int) throws -> Int? {
            guard let value else { return old }
            guard (0...max).contains(value) else {
                throw APIError(.badRequest, code: "bad_field", "limits.\(name) must be 0-\(max) (0 clears it)")
            }
            return value == 0 ? nil : value
        }
        func set(_ value: Double?, _ old: Double?, _ name: String, max: Double) throws -> Double? {
            guard let value else { return old }
            guard value.isFinite, value >= 0, value <= max else {
                throw APIError(.badRequest, code: "bad_field", "limits.\(name) must be 0-\(Int(max)) (0 clears it)")
            }
            return value == 0 ? nil : value
        }
        var limits = current
        limits.dailyLossPercent = try set(change.dailyLoss, current.dailyLossPercent, "daily_loss", max: 100)
        limits.drawdownPercent = try set(change.drawdown, current.drawdownPercent, "drawdown", max: 100)
        limits.openRiskPercent = try set(change.openRisk, current.openRiskPercent, "open_risk", max: 100)
        limits.exposureLots = try set(change.exposureLots, current.exposureLots, "exposure_lots", max: 100_000)
        limits.tradesPerDay = try set(change.tradesPerDay, current.tradesPerDay, "trades_per_day", max: 1_000_000)
        limits.lossStreak = try set(change.lossStreak, current.lossStreak, "loss_streak", max: 1_000)
        limits.cooldownMinutes = try set(
            change.cooldownMinutes, current.cooldownMinutes, "cooldown_minutes", max: 100_000)
        if (limits.lossStreak == nil) != (limits.cooldownMinutes == nil),
            change.lossStreak != nil
                || change.cooldownMinutes != nil
        {
            throw APIError(
                .unprocessableContent, code: "bad_limits", "limits.loss_streak and limits.cooldown_minutes go together")
        }
        return limits
    }

    /// What a create or change asks for, checked. `risk` is nil when not given, `.some(nil)` to clear it (0).
    static func change(
        tier: String?, displayName: String?, riskOverride: Double?
    ) throws -> (tier: Tier?, displayName: String?, risk: Double??) {
        var parsed: Tier?
        if let tier {
            guard let known = Tier(name: tier), tier == tier.uppercased() || tier == tier.lowercased() else {
                throw APIError(
                    .badRequest, code: "bad_field",
                    "tier '\(tier)' is not a tier (\(Tier.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            parsed = known
        }
        if let displayName, displayName.count > 64 {
            throw APIError(.badRequest, code: "bad_field", "display_name is longer than 64 characters")
        }
        var risk: Double??
        if let riskOverride {
            guard riskOverride.isFinite, (0...10).contains(riskOverride) else {
                throw APIError(.badRequest, code: "bad_field", "risk_override must be 0-10 percent (0 clears it)")
            }
            risk = .some(riskOverride == 0 ? nil : riskOverride)
        }
        return (parsed, displayName, risk)
    }
}

/// `POST /users/{uuid}/telegram-link`: a one-time code for the Telegram front.
extension BittenAPI {
    func createTelegramLink(_ input: Operations.CreateTelegramLink.Input) async throws
        -> Operations.CreateTelegramLink.Output
    {
        let uuid = try Self.validUUID(input.path.uuid)
        guard let links = ports.links else {
            throw APIError(.serviceUnavailable, code: "unavailable", "Telegram links need Redis")
        }
        guard try await trade().user(uuid) != nil else {
            throw APIError(.notFound, code: "user_not_found", "no user \(uuid)")
        }
        let code: String
        do { code = try await links.makeLinkCode(for: uuid) } catch {
            throw APIError(
                .serviceUnavailable, code: "store_unavailable", "the link code could not be stored: \(error)")
        }
        return .created(
            .init(body: .json(.init(userUuid: uuid, code: code, expiresIn: TelegramStore.linkTTL))))
    }
}
