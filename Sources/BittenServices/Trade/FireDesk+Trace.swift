import BittenCore
import Foundation

/// The fire desk's steps in the flight recorder: the checks with every input, and each command exactly as sent. The
/// fire path only copies the values they are made of; the recorder makes the steps at its flush.
extension FireDesk {
    /// The checks a reserved fire passed, with their inputs: the account, the sizing (risk %, multipliers, stop
    /// distance, tick value and the conversion chain), and the limits with the figures they were checked against.
    func traceChecks(_ recorder: FlightRecorder, fireID: String, record: [String: String], userUUID: String, at: Double)
    {
        // As they are now (the user's state and figures, the system's state); the text is made at the flush.
        let user = (try? engine.read(userUUID, { $0.users[userUUID] })) ?? nil
        let system = control?.current?.state
        let settings = self.settings
        recorder.later {
            [Self.checksStep(fireID: fireID, record: record, user: user, system: system, settings: settings, at: at)]
        }
    }

    static func checksStep(
        fireID: String, record: [String: String], user: ShardUser?, system: TradingState?,
        settings: TradeSettings, at: Double
    ) -> FlightRecorder.Step {
        let n = TradeShard.number
        var fields = record
        fields["fire_id"] = nil
        fields["state"] = nil
        fields["holds_slot"] = nil
        if let entry = record["entry"].flatMap(Double.init), let sl = record["sl"].flatMap(Double.init) {
            fields["stop_distance"] = n(abs(entry - sl))
        }
        if let tier = record["tier"].flatMap(Tier.init(name:)) {
            let rule = settings.tiers.rule(tier)
            fields["tier_risk_multiplier"] = n(rule.riskMultiplier)
            fields["tier_max_risk_percent"] = n(rule.maxRiskPercent)
            fields["tier_slots"] = String(rule.slots)
        }
        fields["base_risk_percent"] = n(settings.sizer.baseRiskPercent)
        if let user {
            fields["risk_override"] = user.riskOverride
            fields["trading_state"] = user.trading.state.rawValue
            let limits = user.limits.over(settings.riskLimits[user.tier] ?? .none)
            let pairs = limits.userFields
            for i in stride(from: 0, to: pairs.count - 1, by: 2) where !pairs[i + 1].isEmpty {
                fields[pairs[i]] = pairs[i + 1]
            }
            if !limits.isEmpty {
                let figures = user.risk.userFields
                for i in stride(from: 0, to: figures.count - 1, by: 2) { fields[figures[i]] = figures[i + 1] }
            }
        }
        if let system { fields["system_trading_state"] = system.rawValue }
        return FlightRecorder.Step(
            signalID: record["signal_id"], fireID: fireID, step: "checks", at: at, fields: fields)
    }

    /// A command exactly as it went to the EA (its JSON text, made at the flush from the command sent).
    func traceSent(
        _ recorder: FlightRecorder, _ fireID: String, _ command: EACommand, at: Double, to uuid: String,
        step: String = "sent", extra: [String: String] = [:]
    ) {
        recorder.later {
            let text = (try? CommandEncoder.encode(command)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
            let fields = extra.merging(["command": text, "target_uuid": uuid]) { $1 }
            return [FlightRecorder.Step(signalID: nil, fireID: fireID, step: step, at: at, fields: fields)]
        }
    }
}
