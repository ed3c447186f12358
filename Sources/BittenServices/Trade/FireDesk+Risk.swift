import BittenCore
import Foundation
import Logging
import Metrics

/// The risk limits on the fire desk: what the shard needs to check them, and the sweep that puts a user whose
/// loss crossed a limit in close-only.
extension FireDesk {
    /// The account and the market as the limits of `userUUID` see them now.
    func riskContext(userUUID: String, balance: Double, at: Double) -> RiskContext {
        let quotes = self.quotes
        let maxAge = settings.maxQuoteAge
        return RiskContext(
            defaults: settings.riskLimits, balance: balance, noStopRiskPercent: settings.noStopRiskPercent,
            quote: { symbol in
                guard let quote = quotes?.quote(symbol, of: userUUID) ?? quotes?.quote(symbol),
                    at - quote.receivedAt <= maxAge
                else { return nil }
                return (quote.bid, quote.ask)
            })
    }

    /// Users whose loss today or drawdown crossed their limit at current quotes go close-only until the next
    /// trading day: logged, counted, and raised as a system alert.
    func sweepLimits(at: Double) async {
        // Once a second is enough: the limits are on money, not on ticks.
        guard let registry,
            limitSweptAt.withLock({ last in
                at - last >= 1
                    ? {
                        last = at
                        return true
                    }() : false
            })
        else { return }
        // Shard by shard, letting the fire path's tasks run in between (with every user holding positions, the
        // whole sweep takes milliseconds).
        let flipped = await engine.applyEach { shard in
            shard.sweepLimits(at: at, defaults: settings.riskLimits) { uuid in
                guard let node = registry.node(uuid), node.balance > 0 else { return nil }
                return self.riskContext(userUUID: uuid, balance: node.balance, at: at)
            }
        }
        guard !flipped.isEmpty else { return }
        var commands: [[String]] = []
        for (uuid, refusal) in flipped {
            limitCrossings.increment()
            logger.warning(
                "risk limit crossed: user is close-only until the next trading day",
                metadata: [
                    "bitten.node.uuid": "\(uuid)", "bitten.code": "\(refusal.code.rawValue)",
                    "bitten.reason": "\(refusal.message)",
                ])
            let alert: [String: Any] = [
                "kind": "risk_limit", "uuid": uuid, "code": refusal.code.rawValue,
                "message": "\(uuid) is close-only until the next trading day: \(refusal.message)", "timestamp": at,
            ]
            if let data = try? JSONSerialization.data(withJSONObject: alert) {
                commands.append(["LPUSH", RedisKeys.systemAlerts, String(decoding: data, as: UTF8.self)])
            }
        }
        commands.append(["LTRIM", RedisKeys.systemAlerts, "0", "999"])
        await errors.attempt("risk_limit_alert", flipped.map(\.user).joined(separator: ",")) {
            _ = try await store.redis.pipeline(commands)
        }
    }
}
