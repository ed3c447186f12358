import BittenCore

extension ConfigLoader {
    /// Applies the config file's `instruments:` and `tiers:` sections, each a mapping of name to a
    /// mapping of fields:
    ///
    ///     instruments:
    ///       EURUSD: {tick_size: 0.00001, contract_size: 100000, max_lot: 50}
    ///       US30: {tick_size: 1, contract_size: 1, pip_size: 1, profit_currency: USD}
    ///     tiers:
    ///       RECRUIT: {slots: 2, max_risk_percent: 2, risk_multiplier: 1}
    ///
    /// A known symbol or tier keeps the fields not given; a new symbol needs `tick_size`,
    /// `contract_size` and `profit_currency`. Errors name the setting (`instruments.EURUSD.tick_size`).
    public static func applyTrading(
        instruments: [String: [String: String]], tiers: [String: [String: String]],
        to config: inout BittenConfig
    ) throws(ConfigError) {
        for (symbol, fields) in instruments {
            guard Symbol.isValid(symbol) else {
                throw ConfigError(setting: "instruments.\(symbol)", message: "'\(symbol)' is not a symbol")
            }
            let reader = FieldValues(
                prefix: "instruments.\(symbol)", fields: fields,
                known: [
                    "tick_size", "contract_size", "pip_size", "digits", "min_lot", "max_lot",
                    "lot_step", "profit_currency", "tick_value",
                ])
            try reader.checkKeys()
            var instrument: Instrument
            if let existing = config.instruments[symbol] {
                instrument = existing
            } else {
                let tick = try reader.positive("tick_size")
                guard let tick, let contract = try reader.positive("contract_size"),
                    let currency = fields["profit_currency"]
                else {
                    throw ConfigError(
                        setting: "instruments.\(symbol)",
                        message: "a new instrument needs tick_size, contract_size and profit_currency")
                }
                instrument = Instrument(
                    symbol: symbol, tickSize: tick, contractSize: contract, pipSize: tick * 10,
                    digits: PositionSizer.decimals(of: tick), profitCurrency: currency)
            }
            if let value = try reader.positive("tick_size") { instrument.tickSize = value }
            if let value = try reader.positive("contract_size") { instrument.contractSize = value }
            if let value = try reader.positive("pip_size") { instrument.pipSize = value }
            if let value = try reader.positive("digits") { instrument.digits = Int(value) }
            if let value = try reader.positive("min_lot") { instrument.minLot = value }
            if let value = try reader.positive("max_lot") { instrument.maxLot = value }
            if let value = try reader.positive("lot_step") { instrument.lotStep = value }
            if let value = try reader.positive("tick_value") { instrument.tickValue = value }
            if let currency = fields["profit_currency"] {
                guard currency.count == 3, currency.allSatisfy({ $0.isUppercase }) else {
                    throw ConfigError(
                        setting: "instruments.\(symbol).profit_currency",
                        message: "'\(currency)' is not a currency code")
                }
                instrument.profitCurrency = currency
            }
            guard instrument.minLot <= instrument.maxLot else {
                throw ConfigError(setting: "instruments.\(symbol)", message: "min_lot is above max_lot")
            }
            config.instruments.instruments[symbol] = instrument
        }
        for (name, fields) in tiers {
            guard let tier = Tier(name: name) else {
                throw ConfigError(
                    setting: "tiers.\(name)",
                    message: "not a tier (\(Tier.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            let reader = FieldValues(
                prefix: "tiers.\(name)", fields: fields,
                known: Set(["slots", "max_risk_percent", "risk_multiplier"]).union(Self.limitFields))
            try reader.checkKeys()
            var rule = config.tiers.rule(tier)
            if let slots = try reader.positive("slots") {
                guard slots == slots.rounded(), slots <= 1000 else {
                    throw ConfigError(setting: "tiers.\(name).slots", message: "must be a whole number from 1 to 1000")
                }
                rule.slots = Int(slots)
            }
            if let value = try reader.positive("max_risk_percent") {
                guard value <= 100 else {
                    throw ConfigError(setting: "tiers.\(name).max_risk_percent", message: "must be at most 100")
                }
                rule.maxRiskPercent = value
            }
            if let value = try reader.positive("risk_multiplier") { rule.riskMultiplier = value }
            config.tiers.rules[tier] = rule
            let limits = try Self.limits(reader, over: config.riskLimits[tier] ?? .none)
            config.riskLimits[tier] = limits.isEmpty ? nil : limits
        }
    }
}

extension ConfigLoader {
    /// The risk-limit fields of a tier in the config file (`RiskLimits`).
    static let limitFields: Set<String> = [
        "daily_loss", "drawdown", "open_risk", "exposure_lots", "trades_per_day", "loss_streak", "cooldown_minutes",
    ]

    /// A tier's default risk limits from its fields (percent limits up to 100; a streak needs its cooldown).
    static func limits(_ reader: FieldValues, over base: RiskLimits) throws(ConfigError) -> RiskLimits {
        var limits = base
        func percent(_ key: String) throws(ConfigError) -> Double? {
            guard let value = try reader.positive(key) else { return nil }
            guard value <= 100 else {
                throw ConfigError(setting: "\(reader.prefix).\(key)", message: "must be at most 100")
            }
            return value
        }
        func whole(_ key: String) throws(ConfigError) -> Int? {
            guard let value = try reader.positive(key) else { return nil }
            guard value == value.rounded(), value <= 1_000_000 else {
                throw ConfigError(setting: "\(reader.prefix).\(key)", message: "must be a whole number")
            }
            return Int(value)
        }
        if let value = try percent("daily_loss") { limits.dailyLossPercent = value }
        if let value = try percent("drawdown") { limits.drawdownPercent = value }
        if let value = try percent("open_risk") { limits.openRiskPercent = value }
        if let value = try reader.positive("exposure_lots") { limits.exposureLots = value }
        if let value = try whole("trades_per_day") { limits.tradesPerDay = value }
        if let value = try whole("loss_streak") { limits.lossStreak = value }
        if let value = try reader.positive("cooldown_minutes") { limits.cooldownMinutes = value }
        if (limits.lossStreak == nil) != (limits.cooldownMinutes == nil) {
            throw ConfigError(
                setting: "\(reader.prefix).loss_streak", message: "loss_streak and cooldown_minutes go together")
        }
        return limits
    }

    /// Applies the config file's `symbol_aliases:` (broker name → canonical symbol, `GOLD: XAUUSD`).
    public static func applySymbolAliases(_ aliases: [String: String], to config: inout BittenConfig)
        throws(ConfigError)
    {
        for (from, to) in aliases {
            guard Symbol.isValid(from) else {
                throw ConfigError(setting: "symbol_aliases.\(from)", message: "'\(from)' is not a broker symbol")
            }
            guard Symbol.isValid(to), to == to.uppercased() else {
                throw ConfigError(
                    setting: "symbol_aliases.\(from)", message: "'\(to)' is not a canonical symbol (upper case)")
            }
            config.symbolAliases[from.uppercased()] = to
        }
    }
}

/// Reads typed values out of one section of the config file.
struct FieldValues {
    let prefix: String
    let fields: [String: String]
    let known: Set<String>

    func checkKeys() throws(ConfigError) {
        for key in fields.keys where !known.contains(key) {
            throw ConfigError(
                setting: "\(prefix).\(key)", message: "unknown field (known: \(known.sorted().joined(separator: ", ")))"
            )
        }
    }

    /// A number greater than zero, or nil when absent.
    func positive(_ key: String) throws(ConfigError) -> Double? {
        guard let text = fields[key] else { return nil }
        guard let value = Double(text.trimmingSpaces), value.isFinite, value > 0 else {
            throw ConfigError(setting: "\(prefix).\(key)", message: "'\(text)' is not a number greater than 0")
        }
        return value
    }
}
