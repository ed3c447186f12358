import BittenCore
import BittenServices
import EASimulator
import Foundation
import Logging
import ServiceLifecycle

/// `bitten up --demo`'s small signal generator: makes the demo EAs users, posts a signal built from
/// the live quotes every `interval`, fires it for a few users and closes positions after a minute,
/// so a newcomer sees signals, CITADEL levels, positions with live P&L and statistics at once.
/// It goes through the real paths (signal intake, fire desk, EA simulator confirmations).
struct DemoTrader: Service {
    let fleet: Fleet
    let intake: SignalIntake
    let desk: FireDesk
    let store: TradeStore
    let quotes: TelemetryService
    let interval: Duration
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(3)) }
        var users: [String] = []
        var round = 0
        var opened: [(ticket: Int, at: Date)] = []
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            round += 1
            if users.isEmpty || users.count < fleet.uuids.count {
                users = fleet.uuids
                let tiers: [Tier] = [.recruit, .corporal, .sergeant, .lieutenant]
                for (index, uuid) in users.enumerated() where (try? await store.user(uuid)) == nil {
                    try? await store.save(
                        UserRecord(
                            uuid: uuid, tier: tiers[index % tiers.count], displayName: "Demo trader \(index + 1)",
                            createdAt: Date().timeIntervalSince1970))
                }
            }
            let live = quotes.latestQuotes.values.filter { Date().timeIntervalSince1970 - $0.receivedAt < 30 }
            if let quote = live.randomElement() {
                let pip = pipSize(symbol: quote.symbol, price: quote.bid)
                let buy = Bool.random()
                let entry = buy ? quote.ask : quote.bid
                let stop = (15 + Double(Int.random(in: 0...25))) * pip
                let id = "DEMO_\(quote.symbol)_\(Int(Date().timeIntervalSince1970))_\(round)"
                let digits = pip < 0.001 ? 5 : 3
                func fmt(_ v: Double) -> String { String(format: "%.\(digits)f", v) }
                let text =
                    #"{"signal_id":"\#(id)","symbol":"\#(quote.symbol)","direction":"\#(buy ? "BUY" : "SELL")","entry_price":\#(fmt(entry)),"stop_loss":\#(fmt(buy ? entry - stop : entry + stop)),"take_profit":\#(fmt(buy ? entry + 2 * stop : entry - 2 * stop)),"confidence":\#(Int.random(in: 70...95)),"source":"demo"}"#
                do {
                    _ = try await intake.submit(Array(text.utf8))
                    // Users with a free slot (RECRUIT has one), so the demo does not pile up refusals.
                    var chosen: [String] = []
                    for uuid in users.shuffled() where chosen.count < 3 {
                        if let used = try? await store.slotsUsed(uuid), used == 0 { chosen.append(uuid) }
                    }
                    for uuid in chosen {
                        if let fire = try? await desk.fire(signalID: id, userUUID: uuid) {
                            logger.debug("demo fire", metadata: ["bitten.fire.id": "\(fire.fireID)"])
                        }
                    }
                } catch {
                    logger.debug("demo signal refused", metadata: ["bitten.reason": "\(error)"])
                }
            }
            // Close what has been open for a minute.
            if let open = try? await store.openPositions() {
                for position in open where !opened.contains(where: { $0.ticket == position.ticket }) {
                    opened.append((position.ticket, Date()))
                }
                let due = opened.filter { Date().timeIntervalSince($0.at) > 60 }
                for item in due { _ = try? await desk.close(ticket: item.ticket) }
                opened.removeAll { item in
                    due.contains { $0.ticket == item.ticket } || !open.contains { $0.ticket == item.ticket }
                }
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}

/// `bitten up --demo`: simulated EAs (faithful to the EA v2.05, on a broker that decorates its names, `EURUSD.r`,
/// `GOLD`) and, with the trade path, telemetry and signal intake here, the demo trader.
enum DemoSystem {
    static func make(_ config: BittenConfig, _ parts: SystemParts, count: Int) throws -> [any Service] {
        let host = config.zmqHost == "*" ? "127.0.0.1" : config.zmqHost
        var demo = FleetConfiguration(
            count: count, host: host, commandPort: config.commandPort, marketPort: config.marketPort,
            confirmPort: config.confirmPort, heartbeatInterval: .seconds(5), tickInterval: .seconds(1))
        demo.symbolSuffix = ".r"
        demo.brokerSymbols = ["XAUUSD": "GOLD"]
        demo.marketWatch = ["EURJPY", "GBPJPY", "AUDUSD", "USDCHF"]
        let fleet = try Fleet(configuration: demo, logger: Logger(label: "bitten.demo"))
        guard let desk = parts.desk, let store = parts.store, let intake = parts.intake, let telemetry = parts.telemetry
        else { return [fleet] }
        return [
            fleet,
            DemoTrader(
                fleet: fleet, intake: intake, desk: desk, store: store, quotes: telemetry, interval: .seconds(10),
                logger: Logger(label: "bitten.demo")),
        ]
    }
}
