import ArgumentParser
import BittenCore
import BittenServices
import Foundation

/// `bitten replay --from DAY|SIGNAL|FIRE --config FILE`: what another configuration would have made of recorded fires.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract:
            "Replay recorded fires (a day's, a signal's or one) under the configuration of --config (tiers, base risk, risk limits) and print what would have differed: fires refused or resized, and the P&L."
    )
    @OptionGroup var options: ConfigOptions
    @Option(help: "A day (YYYY-MM-DD, UTC: the signals received that day), a signal id, or a fire id (F-…).")
    var from: String
    @Flag(help: "Print every fire, not only those that differ.") var all = false

    func run() async throws {
        let config = try resolveOrExit(options)
        let client = try APIClient(options)
        let fires = try await recorded(client)
        guard !fires.isEmpty else {
            print("no recorded fire for \(from) (the flight recorder keeps 30 days)")
            throw ExitCode(1)
        }
        let outcomes = Replay.run(
            fires,
            with: .init(
                sizer: PositionSizer(baseRiskPercent: config.baseRiskPercent), tiers: config.tiers,
                instruments: config.instruments, limits: config.riskLimits,
                noStopRiskPercent: config.noStopRiskPercent))
        let signals = Set(fires.map(\.signalID)).count
        print(
            "replay of \(from): \(fires.count) recorded fire(s) of \(signals) signal(s), with \(options.config ?? "the configuration in force")"
        )
        print(
            "FIRE".padding(toLength: 24, withPad: " ", startingAt: 0)
                + "USER".padding(toLength: 22, withPad: " ", startingAt: 0)
                + "SYMBOL   LOT (recorded → replayed)   P&L (recorded → replayed)   OUTCOME")
        for outcome in outcomes where all || outcome.change != "unchanged" {
            let fire = outcome.fire
            let lot = "\(Self.text(fire.lot)) → \(outcome.lot.map(Self.text) ?? "-")"
            let profit = "\(fire.profit.map(Self.text) ?? "open") → \(Self.text(outcome.profit))"
            let what = outcome.refusal.map { "refused \($0.code.rawValue): \($0.message)" } ?? outcome.change
            print(
                fire.fireID.padding(toLength: 24, withPad: " ", startingAt: 0)
                    + fire.userUUID.padding(toLength: 22, withPad: " ", startingAt: 0)
                    + fire.symbol.padding(toLength: 9, withPad: " ", startingAt: 0)
                    + lot.padding(toLength: 28, withPad: " ", startingAt: 0)
                    + profit.padding(toLength: 28, withPad: " ", startingAt: 0) + what)
        }
        let refused = outcomes.filter { $0.lot == nil }
        let byCode = Dictionary(grouping: refused, by: { $0.refusal?.code.rawValue ?? "?" }).map {
            "\($0.key) \($0.value.count)"
        }
        let recordedPnL = fires.compactMap(\.profit).reduce(0, +)
        let replayedPnL = outcomes.map(\.profit).reduce(0, +)
        print(
            "refused: \(refused.count)\(byCode.isEmpty ? "" : " (" + byCode.sorted().joined(separator: ", ") + ")"); resized: \(outcomes.filter { $0.change == "resized" }.count); unchanged: \(outcomes.filter { $0.change == "unchanged" }.count)"
        )
        print(
            "P&L of closed trades: recorded \(Self.text(recordedPnL)), replayed \(Self.text(replayedPnL)) (\(replayedPnL - recordedPnL >= 0 ? "+" : "")\(Self.text(replayedPnL - recordedPnL)))"
        )
    }

    /// The recorded fires of `from`, from the flight recorder through the HTTP API.
    func recorded(_ client: APIClient) async throws -> [ReplayFire] {
        if from.hasPrefix("F-") {
            return try await fire(client, from).map { [$0] } ?? []
        }
        var signals: [String] = []
        if let day = Self.day(from) {
            let (_, data) = try await client.send("GET", "/signals?limit=1000")
            let body = (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
            for signal in body["signals"] as? [[String: Any]] ?? [] {
                guard let id = signal["signal_id"] as? String, let at = signal["received_at"] as? Double,
                    at >= day, at < day + 86_400
                else { continue }
                signals.append(id)
            }
        } else {
            signals = [from]
        }
        var fires: [ReplayFire] = []
        for signal in signals {
            var offset = 0
            while true {
                let (status, data) = try await client.send(
                    "GET", "/signals/\(signal)/trace?limit=1000&offset=\(offset)")
                guard status == 200, let body = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                    break
                }
                let page = body["fires"] as? [[String: Any]] ?? []
                for trace in page { if let fire = Self.fire(trace) { fires.append(fire) } }
                offset += page.count
                if page.isEmpty || offset >= body["total_fires"] as? Int ?? 0 { break }
            }
        }
        return fires
    }

    func fire(_ client: APIClient, _ id: String) async throws -> ReplayFire? {
        let (status, data) = try await client.send("GET", "/fires/\(id)/trace")
        guard status == 200, let body = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            return nil
        }
        return Self.fire(body)
    }

    /// A fire from its trace: the checks' inputs, whether it filled, its close.
    static func fire(_ trace: [String: Any]) -> ReplayFire? {
        let steps = trace["steps"] as? [[String: Any]] ?? []
        func data(_ name: String) -> [String: String]? {
            steps.first { $0["step"] as? String == name }?["data"] as? [String: String]
        }
        guard let id = trace["fire_id"] as? String, let checks = data("checks"),
            let at = checks["created_at"].flatMap(Double.init), let balance = checks["balance"].flatMap(Double.init),
            let entry = checks["entry"].flatMap(Double.init), let sl = checks["sl"].flatMap(Double.init),
            let tickValue = checks["tick_value"].flatMap(Double.init),
            let tier = checks["tier"].flatMap(Tier.init(name:)),
            let lot = checks["lot"].flatMap(Double.init), let user = checks["user_uuid"], let symbol = checks["symbol"]
        else { return nil }
        let closed = data("closed")
        return ReplayFire(
            fireID: id, signalID: checks["signal_id"] ?? "", userUUID: user, symbol: symbol,
            isBuy: checks["direction"] == "BUY", at: at, balance: balance, entry: entry, stopLoss: sl,
            tickValue: tickValue, tier: tier, riskOverride: checks["risk_override"].flatMap(Double.init),
            citadelMultiplier: checks["citadel_multiplier"].flatMap(Double.init) ?? 1, lot: lot,
            filled: data("filled") != nil, closedAt: closed?["close_time"].flatMap(Double.init),
            profit: closed?["profit"].flatMap(Double.init))
    }

    /// The start of a `YYYY-MM-DD` day (UTC), nil for anything else.
    static func day(_ text: String) -> Double? {
        let parts = text.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3, text.count == 10 else { return nil }
        var components = DateComponents()
        components.year = parts[0]
        components.month = parts[1]
        components.day = parts[2]
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let date = calendar.date(from: components), calendar.component(.day, from: date) == parts[2] else {
            return nil
        }
        return date.timeIntervalSince1970
    }

    static func text(_ value: Double) -> String { PlainDecimal.format(value, maxFractionDigits: 2) ?? "\(value)" }
}
