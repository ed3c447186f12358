import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization

/// A fire's plan: the checks that need no stored state, the sizes, the currency conversion and the stored record.
extension FireDesk {
    /// The checks that need no stored state, and the sizes: for every tier without a risk override,
    /// or for `only`.
    func plan(
        _ signal: SignalRecord, userUUID: String, at: Double,
        only: (tier: Tier, override: String)?
    ) async throws(FireRefusal) -> FirePlan {
        guard signal.expiresAt > at else {
            throw FireRefusal(
                .signalExpired, "signal \(signal.signalID) expired at \(Int(signal.expiresAt)) (now \(Int(at)))")
        }
        guard let channel else { throw FireRefusal(.eaOffline, "no gateway in this process can reach EAs") }
        // This process's registry when it has one; in a split deployment, the node hash its gateway writes.
        let known: NodeRecord?
        if let registry {
            known = registry.node(userUUID)
        } else {
            known = try await guarded { try await store.node(userUUID) }
        }
        guard let node = known, node.online, await channel.reachable(userUUID) else {
            throw FireRefusal(.eaOffline, "the EA of \(userUUID) is not online")
        }
        if let switching = node.pendingSwitch {
            throw FireRefusal(
                .pendingSwitch,
                "\(userUUID) is pinned to account \(node.pin?.account ?? node.account); account \(switching.account) on \(switching.server) registered from \(switching.peer) and waits for `bitten node approve \(userUUID)`"
            )
        }
        guard let direction = Direction(rawValue: signal.direction) else {
            throw FireRefusal(.badRequest, "signal \(signal.signalID) has direction \(signal.direction)")
        }
        let stopOK = direction == .buy ? signal.stopLoss < signal.entry : signal.stopLoss > signal.entry
        guard stopOK else {
            throw FireRefusal(
                .stopLossWrongSide,
                "stop loss \(signal.stopLoss) is on the wrong side of entry \(signal.entry) for \(direction.rawValue)")
        }
        guard let instrument = settings.instruments[signal.symbol] else {
            throw FireRefusal(.unknownInstrument, "no instrument definition for \(signal.symbol)")
        }
        // The fire names the symbol as this EA's broker does; a broker that does not list it cannot trade it.
        let brokerSymbol: String
        if node.brokerSymbols.isEmpty {
            brokerSymbol = signal.symbol
        } else if let name = node.brokerSymbols[signal.symbol] {
            brokerSymbol = name
        } else {
            let listed = node.brokerSymbols.names.keys.sorted().prefix(12).joined(separator: ", ")
            throw FireRefusal(
                .symbolNotAtBroker,
                "\(signal.symbol) is not listed by the broker of \(userUUID) (\(node.company.isEmpty ? node.server : node.company), lists \(listed))"
            )
        }
        let converter = self.converter(at: at, symbol: signal.symbol, entry: signal.entry)
        guard let (tickValue, conversion) = instrument.tickValue(accountCurrency: node.currency, converter: converter)
        else {
            let hint = converter.missingPairHint(from: instrument.profitCurrency, to: node.currency)
            throw FireRefusal(
                .sizing,
                "cannot value \(signal.symbol) in \(node.currency): no live quotes convert \(instrument.profitCurrency) to \(node.currency) (a quote of \(hint) would)"
            )
        }
        var plan = FirePlan(
            direction: direction, balance: node.balance, tickSize: instrument.tickSize, tickValue: tickValue,
            conversion: conversion.path.joined(separator: ">"), brokerSymbol: brokerSymbol)
        let cases: [(Tier, String)] = only.map { [$0] } ?? Tier.allCases.map { ($0, "") }
        for (tier, override) in cases {
            let rule = settings.tiers.rule(tier)
            var variant = SizingChoice(key: tier.rawValue + "|" + override, slots: rule.slots, lot: 0, fields: [])
            do {
                let size = try settings.sizer.size(
                    balance: node.balance, entry: signal.entry, stopLoss: signal.stopLoss,
                    instrument: instrument, tickValue: tickValue, rule: rule,
                    userOverride: Double(override), citadelMultiplier: signal.citadelMultiplier)
                variant.lot = size.lot
                variant.fields = [
                    "lot", n(size.lot), "risk_percent", n(size.riskPercent), "risk_amount", n(size.riskAmount),
                    "tier", tier.rawValue,
                ]
            } catch {
                variant.error = error.message
            }
            plan.variants[variant.key] = variant
        }
        return plan
    }

    func n(_ value: Double) -> String { PlainDecimal.format(value, maxFractionDigits: 8) ?? "0" }

    /// Currency conversion through the live quotes (any EA's freshest), plus the signal's own pair at
    /// its entry when nobody quotes it (USDJPY converts its own JPY profit).
    func converter(at: Double, symbol: String, entry: Double) -> CurrencyConverter {
        var mids: [(String, Double)] = []
        var quoted = false
        for quote in quotes?.latestQuotes.values ?? [:].values where at - quote.receivedAt <= settings.maxQuoteAge {
            mids.append((quote.symbol, (quote.bid + quote.ask) / 2))
            if quote.symbol == symbol { quoted = true }
        }
        if !quoted { mids.append((symbol, entry)) }
        return CurrencyConverter(mids: mids)
    }

    /// The fire record's fields that do not depend on the user's tier.
    func recordFields(
        _ signal: SignalRecord, userUUID: String, direction: Direction, at: Double, deadline: Double,
        plan: FirePlan
    ) -> [String] {
        [
            "kind", "fire", "signal_id", signal.signalID, "user_uuid", userUUID, "symbol", signal.symbol,
            "direction", direction.rawValue, "entry", n(signal.entry), "sl", n(signal.stopLoss), "tp",
            n(signal.takeProfit),
            "citadel_multiplier", n(signal.citadelMultiplier), "balance", n(plan.balance),
            "tick_size", n(plan.tickSize), "tick_value", n(plan.tickValue), "created_at", n(at), "deadline",
            n(deadline),
            "broker_symbol", plan.brokerSymbol, "conversion", plan.conversion,
        ]
    }
}
