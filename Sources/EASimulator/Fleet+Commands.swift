import BittenCore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// How a simulated EA takes commands: recorded on arrival, read one per chart tick and answered as the EA
/// v2.05 answers them (or at once and ideally, for load tests).
extension Fleet {
    /// A command reached a faithful EA's socket (it is read later, one per chart tick): a `fire` is
    /// recorded as the EA's substring reader sees it, with the symbol as sent.
    func recordArrival(_ s: inout State, uuid: String, payload: [UInt8]) {
        guard EAReader.value(payload, "type") == "fire" else { return }
        var direction = EAReader.value(payload, "direction")
        if direction.isEmpty { direction = EAReader.value(payload, "side") }
        s.fires.append(
            FireCommand(
                fireID: EAReader.value(payload, "fire_id"), targetUUID: EAReader.value(payload, "target_uuid"),
                symbol: EAReader.value(payload, "symbol"),
                direction: direction == "BUY" || direction == "buy" ? .buy : .sell,
                entry: EAReader.double(EAReader.value(payload, "entry")),
                sl: EAReader.double(EAReader.value(payload, "sl")),
                tp: EAReader.double(EAReader.value(payload, "tp")),
                lot: EAReader.double(EAReader.value(payload, "lot")),
                signalID: EAReader.value(payload, "signal_id"), source: EAReader.value(payload, "source"),
                timestamp: MetaTraderTime(EAReader.value(payload, "timestamp")) ?? MetaTraderTime(epochSeconds: 0)))
        if s.fires.count > 10_000 { s.fires.removeFirst(s.fires.count - 10_000) }
    }

    /// The exact bytes that make the EA v2.05 open a hybrid (three-leg) position.
    static let hybridMarker = Array(#""hybrid":{"enabled":true"#.utf8)

    /// The broker side of a faithful EA: a position whose stop loss or take profit the market reached
    /// is closed at that level (balance updated), and nobody is told.
    func brokerStops(_ ea: inout SimulatedEA, market: MarketWalk) {
        for (ticket, position) in ea.positions {
            guard let q = market.quote(position.symbol) else { continue }
            let price = position.buy ? q.bid : q.ask
            var hit: (String, Double)?
            if position.sl > 0, position.buy ? price <= position.sl : price >= position.sl {
                hit = ("stop_loss", position.sl)
            }
            if position.tp > 0, position.buy ? price >= position.tp : price <= position.tp {
                hit = ("take_profit", position.tp)
            }
            guard let (reason, target) = hit else { continue }
            let slip = reason == "stop_loss" ? configuration.stopSlippage : 0
            let level = position.buy ? target - slip : target + slip
            let profit = market.profit(
                symbol: position.symbol, buy: position.buy, lot: position.lot, open: position.openPrice,
                close: level, currency: ea.currency)
            ea.positions[ticket] = nil
            ea.balance += profit
            ea.equity = ea.balance
            ea.margin = max(0, ea.margin - position.lot * 1000 / 5)
            ea.brokerCloses.append((ticket, reason, level, profit))
        }
    }

    /// The faithful EA reads one command with its substring reader and answers as v2.05 does.
    func read(_ s: inout State, index: Int, payload: [UInt8]) -> [String] {
        let time = Self.now()
        let receivedAt = Date().timeIntervalSince1970
        var ea = s.eas[index]
        defer { s.eas[index] = ea }
        s.stats.commandsReceived += 1
        s.commandLog.append((ea.uuid, String(decoding: payload, as: UTF8.self)))
        if s.commandLog.count > 1000 { s.commandLog.removeFirst(s.commandLog.count - 1000) }
        let target = EAReader.value(payload, "target_uuid")
        // The EA ignores a command for another UUID.
        guard target.isEmpty || target == ea.uuid else { return [] }
        let type = EAReader.value(payload, "type")
        if s.muted.contains(ea.uuid), type != "ping" {
            if type == "fire" { s.stats.firesReceived += 1 }
            return []
        }
        switch type {
        case "fire":
            s.stats.firesReceived += 1
            let fireID = EAReader.value(payload, "fire_id")
            let brokerSymbol = EAReader.value(payload, "symbol")
            var direction = EAReader.value(payload, "direction")
            if direction.isEmpty { direction = EAReader.value(payload, "side") }
            let entry = EAReader.double(EAReader.value(payload, "entry"))
            let sl = EAReader.double(EAReader.value(payload, "sl"))
            let tp = EAReader.double(EAReader.value(payload, "tp"))
            let lot = EAReader.double(EAReader.value(payload, "lot"))
            let buy = direction == "BUY" || direction == "buy"
            if s.fireReceivedAt.count >= 100_000 { s.fireReceivedAt = [:] }
            s.fireReceivedAt[fireID] = receivedAt
            s.stats.confirmationsSent += 1
            // SymbolSelect fails for a name this broker does not have.
            guard
                let canonical = configuration.allSymbols.first(where: { configuration.brokerName($0) == brokerSymbol })
            else {
                return [
                    EAMessages.confirmation(
                        ea, fireID: fireID, success: false, ticket: 0, price: 0, lot: lot,
                        message: "Symbol not available: \(brokerSymbol)", time: time)
                ]
            }
            guard let q = s.market.quote(canonical) else {
                return [
                    EAMessages.confirmation(
                        ea, fireID: fireID, success: false, ticket: 0, price: 0, lot: lot,
                        message: "No quotes available for \(brokerSymbol)", time: time)
                ]
            }
            if s.market.unit() < configuration.failureRate {
                return [
                    EAMessages.confirmation(
                        ea, fireID: fireID, success: false, ticket: 0, price: 0, lot: lot,
                        message: "Trade execution failed - Error: 4756 Result: 10019", time: time)
                ]
            }
            let price = buy ? q.ask : q.bid
            // A stop or target on the wrong side of the price is zeroed; the confirmation does not say so.
            let keptSL = sl > 0 && (buy ? sl < price : sl > price) ? sl : 0
            let keptTP = tp > 0 && (buy ? tp > price : tp < price) ? tp : 0
            if payload.count >= Self.hybridMarker.count,
                payload.indices.contains(where: { i in
                    i + Self.hybridMarker.count <= payload.count
                        && payload[i..<(i + Self.hybridMarker.count)].elementsEqual(Self.hybridMarker)
                })
            {
                // Hybrid: three legs (25 / 25 / 50 %), ONE confirmation with the first ticket and the total lot.
                let first = s.nextTicket + 1
                for share in [0.25, 0.25, 0.5] {
                    s.nextTicket += 1
                    ea.positions[s.nextTicket] = .init(
                        symbol: canonical, buy: buy, lot: ((lot * share) * 100).rounded() / 100,
                        openPrice: price, sl: keptSL, tp: 0)
                }
                return [
                    EAMessages.confirmation(
                        ea, fireID: fireID, success: true, ticket: first, price: price, lot: lot,
                        message: "HYBRID: 3/3 positions opened", time: time)
                ]
            }
            let volume = lot <= 0 ? 0.01 : lot
            s.nextTicket += 1
            ea.positions[s.nextTicket] = .init(
                symbol: canonical, buy: buy, lot: volume, openPrice: price, sl: keptSL, tp: keptTP)
            ea.margin += volume * 1000 / 5
            // The lot echoed is the one requested (0 stays 0 even though 0.01 traded).
            return [
                EAMessages.confirmation(
                    ea, fireID: fireID, success: true, ticket: s.nextTicket, price: price, lot: lot,
                    message: "Trade executed successfully via DEALER", time: time)
            ]
        case "close_ticket":
            s.stats.confirmationsSent += 1
            let ticket = Int(EAReader.value(payload, "ticket")) ?? 0
            guard ticket > 0 else {
                return [
                    EAMessages.closeConfirmation(
                        ea, commandType: "close_ticket", ticket: ticket, closePrice: 0, lot: 0,
                        success: false, message: "Invalid ticket number", time: time)
                ]
            }
            guard let position = ea.positions[ticket] else {
                return [
                    EAMessages.closeConfirmation(
                        ea, commandType: "close_ticket", ticket: ticket, closePrice: 0, lot: 0,
                        success: false, message: "Position not found", time: time)
                ]
            }
            settle(&ea, ticket: ticket, market: s.market)
            return [
                EAMessages.closeConfirmation(
                    ea, commandType: "close_ticket", ticket: ticket, closePrice: 0, lot: position.lot,
                    success: true, message: "Position closed successfully", time: time)
            ]
        case "close_all":
            s.stats.confirmationsSent += 1
            var volume = 0.0
            let tickets = ea.positions.keys.sorted()
            for ticket in tickets {
                volume += ea.positions[ticket]?.lot ?? 0
                settle(&ea, ticket: ticket, market: s.market)
            }
            let message = "Closed \(tickets.count) positions, 0 failed, Total volume: \(EAMessages.money(volume))"
            return [
                EAMessages.closeConfirmation(
                    ea, commandType: "close_all", ticket: 0, closePrice: 0, lot: volume,
                    success: true, message: message, time: time)
            ]
        case "ping":
            s.stats.pongsSent += 1
            return [EAMessages.pong(ea, pingID: EAReader.value(payload, "ping_id"), time: time)]
        default:
            logger.debug("simulated EA: unknown command type", metadata: ["bitten.type": "\(type)"])
            return []
        }
    }

    /// Closes a position at the market (bid for a BUY, ask for a SELL) and books its profit.
    @discardableResult
    func settle(_ ea: inout SimulatedEA, ticket: Int, market: MarketWalk) -> Double? {
        guard let position = ea.positions[ticket], let q = market.quote(position.symbol) else { return nil }
        let closePrice = position.buy ? q.bid : q.ask
        ea.positions[ticket] = nil
        ea.balance += market.profit(
            symbol: position.symbol, buy: position.buy, lot: position.lot, open: position.openPrice,
            close: closePrice, currency: ea.currency)
        ea.equity = ea.balance
        ea.margin = max(0, ea.margin - position.lot * 1000 / 5)
        return closePrice
    }

    /// The idealised EA (load benchmarks only): answers the commands that arrive on its DEALER at
    /// once, with Bitten's own parser, real close prices and one answer per closed ticket.
    func answer(index: Int, payload: [UInt8]) -> [String] {
        let receivedAt = Date().timeIntervalSince1970
        let command: EACommand
        do {
            command = try EACommand.decode(payload)
        } catch {
            logger.warning("simulated EA could not read a command", metadata: ["bitten.error": "\(error)"])
            return []
        }
        let time = Self.now()
        return state.withLock { s -> [String] in
            guard index < s.eas.count else { return [] }
            s.stats.commandsReceived += 1
            if case .fire(let fire) = command {
                if s.fireReceivedAt.count >= 100_000 { s.fireReceivedAt = [:] }
                s.fireReceivedAt[fire.fireID] = receivedAt
                s.fires.append(fire)
                if s.fires.count > 10_000 { s.fires.removeFirst(s.fires.count - 10_000) }
            }
            // The real EA ignores commands addressed to another UUID.
            guard command.targetUUID == s.eas[index].uuid, !s.eas[index].stopped else { return [] }
            if s.muted.contains(s.eas[index].uuid), !isPing(command) { return [] }
            var ea = s.eas[index]
            defer { s.eas[index] = ea }
            let reply: [String]
            switch command {
            case .fire(let fire):
                s.stats.firesReceived += 1
                let lot = fire.lot <= 0 ? 0.01 : fire.lot
                let canonical =
                    configuration.allSymbols.first { configuration.brokerName($0) == fire.symbol } ?? fire.symbol
                let failed = s.market.unit() < configuration.failureRate
                if failed || s.market.quote(canonical) == nil {
                    reply = [
                        EAMessages.confirmation(
                            ea, fireID: fire.fireID, success: false, ticket: 0, price: 0, lot: lot,
                            message: "Trade execution failed - Error: 4756 Result: 10019", time: time)
                    ]
                } else {
                    let q = s.market.quote(canonical)!
                    let price = fire.direction == .buy ? q.ask : q.bid
                    s.nextTicket += 1
                    ea.positions[s.nextTicket] = .init(
                        symbol: canonical, buy: fire.direction == .buy, lot: lot, openPrice: price,
                        sl: 0, tp: 0)
                    ea.margin += lot * 1000 / 5
                    reply = [
                        EAMessages.confirmation(
                            ea, fireID: fire.fireID, success: true, ticket: s.nextTicket,
                            price: price, lot: lot, message: "Trade executed successfully via DEALER", time: time)
                    ]
                }
                s.stats.confirmationsSent += 1
            case .closeTicket(_, let ticket, _):
                reply = [idealClose(&ea, ticket: ticket, market: s.market, commandType: "close_ticket", time: time)]
                s.stats.confirmationsSent += 1
            case .closeAll:
                let tickets = ea.positions.keys.sorted()
                reply =
                    tickets.isEmpty
                    ? [
                        EAMessages.closeConfirmation(
                            ea, commandType: "close_all", ticket: 0, closePrice: 0, lot: 0, success: true,
                            message: "No positions", time: time)
                    ]
                    : tickets.map {
                        idealClose(&ea, ticket: $0, market: s.market, commandType: "close_all", time: time)
                    }
                s.stats.confirmationsSent += reply.count
            case .ping(_, let pingID, _):
                reply = [EAMessages.pong(ea, pingID: pingID, time: time)]
                s.stats.pongsSent += 1
            }
            s.stats.sent += reply.count
            return reply
        }
    }

    func isPing(_ command: EACommand) -> Bool {
        if case .ping = command { return true }
        return false
    }

    func idealClose(_ ea: inout SimulatedEA, ticket: Int, market: MarketWalk, commandType: String, time: String)
        -> String
    {
        guard let position = ea.positions[ticket], let closePrice = settle(&ea, ticket: ticket, market: market) else {
            return EAMessages.closeConfirmation(
                ea, commandType: commandType, ticket: ticket, closePrice: 0, lot: 0,
                success: false, message: "Position not found", time: time)
        }
        return EAMessages.closeConfirmation(
            ea, commandType: commandType, ticket: ticket, closePrice: closePrice,
            lot: position.lot, success: true, message: "Position closed", time: time)
    }
}
