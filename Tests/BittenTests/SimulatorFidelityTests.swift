import BittenCore
import Logging
import Testing

@testable import EASimulator

/// The simulated EA reads commands the way the EA v2.05 does, not with Bitten's parser.
@Suite("Simulator fidelity: the EA's command reader")
struct SimulatorFidelityTests {
    @Test func readsTheFirstKeyUpToTheNextDelimiterWithoutEscapes() {
        let command = Array(
            #"{"type":"fire","fire_id":"F-1","target_uuid":"user_1234567","symbol":"EURUSD.r","entry": 1.0852,"sl":1.0832,"lot":0.35,"note":"a\"b","type":"close_all"}"#
                .utf8)
        #expect(EAReader.value(command, "type") == "fire")  // the first one wins
        #expect(EAReader.value(command, "symbol") == "EURUSD.r")
        #expect(EAReader.value(command, "entry") == "1.0852")  // spaces after the colon are skipped
        #expect(EAReader.value(command, "note") == #"a\"#)  // no escapes: the string ends at the next quote
        #expect(EAReader.value(command, "missing") == "")
        // A space before the colon hides the key from the EA.
        #expect(EAReader.value(Array(#"{"lot" :0.5}"#.utf8), "lot") == "")
        // A nested value runs to the next , } or ].
        #expect(EAReader.value(Array(#"{"hybrid":{"enabled":true,"x":1}}"#.utf8), "hybrid") == "{\"enabled\":true")
        #expect(EAReader.double("0.35") == 0.35 && EAReader.double("") == 0 && EAReader.double("1.5abc") == 1.5)
        // What Bitten's encoder writes, the EA reads back field by field.
        let fire = FireCommand(
            fireID: "F-20261124-000042", targetUUID: "user_5512093", symbol: "[DJI30]", direction: .sell,
            entry: 44120, sl: 44220, tp: 43920, lot: 0.1, signalID: "SIG_1", timestamp: MetaTraderTime(epochSeconds: 0))
        let bytes = (try? CommandEncoder.encode(.fire(fire))) ?? []
        #expect(EAReader.value(bytes, "symbol") == "[DJI30]")
        #expect(EAReader.value(bytes, "direction") == "SELL")
        #expect(EAReader.double(EAReader.value(bytes, "sl")) == 44220)
        #expect(!String(decoding: bytes, as: UTF8.self).contains("\": "))  // compact: no space after a colon
    }

    @Test func faithfulByDefault() {
        let config = FleetConfiguration(count: 1)
        #expect(config.fidelity == .v205)
        var suffixed = config
        suffixed.symbolSuffix = "m"
        suffixed.brokerSymbols = ["XAUUSD": "GOLD"]
        #expect(suffixed.brokerName("EURUSD") == "EURUSDm" && suffixed.brokerName("XAUUSD") == "GOLD")
        #expect(Windows1252.encode(config.company).contains(0xE9))  // the company name is written in the code page
    }

    @Test func ticksInPhasesReachEveryEAOncePerIntervalAndMoveTheMarketOnce() async throws {
        // 40 EAs on 4 loop threads (3 sockets each), their ticks in 4 phases: a phase is one loop's EAs.
        var config = FleetConfiguration(count: 40)
        config.socketsPerLoop = 30
        config.maxLoops = 4
        config.tickPhases = 4
        config.sendOHLC = false
        let fleet = try Fleet(configuration: config, logger: Logger(label: "bitten.test"))
        #expect(fleet.loops.count == 4)
        let quote = { fleet.state.withLock { $0.market.quote("EURUSD")?.bid } }
        let before = quote()
        fleet.sendTicks(phase: 0, of: 4)
        let moved = quote()
        let first = fleet.state.withLock { $0.eas.map(\.ticks) }
        let symbols = first[0]
        #expect(symbols == config.allSymbols.count)
        #expect(first.indices.allSatisfy { first[$0] == ($0 % 4 == 0 ? symbols : 0) }, "\(first)")
        for phase in 1..<4 { fleet.sendTicks(phase: phase, of: 4) }
        let all = fleet.state.withLock { $0.eas.map(\.ticks) }
        #expect(all.allSatisfy { $0 == symbols }, "\(all)")
        #expect(fleet.stats.ticksSent == 40 * symbols)
        // The market moved at the first phase only.
        #expect(before != moved && quote() == moved)
        for loop in fleet.loops { await loop.shutdown() }
    }
}
