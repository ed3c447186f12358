import BittenTestSupport
import Testing

@testable import BittenCore

/// A re-implementation of the EA's naive extractor: find the first `"key":` and read up to `,` `}` or `]`.
func naiveExtract(_ json: String, _ key: String) -> String? {
    guard let range = json.range(of: "\"\(key)\":") else { return nil }
    var value = json[range.upperBound...].prefix { $0 != "," && $0 != "}" && $0 != "]" }
    if value.hasPrefix("\"") { value = value.dropFirst() }
    if value.hasSuffix("\"") { value = value.dropLast() }
    return String(value)
}

@Suite("Command encoder")
struct CommandEncoderTests {
    let time = MetaTraderTime("2026.11.24 14:06:00")!

    func fire(_ modify: (inout FireCommand) -> Void = { _ in }) -> FireCommand {
        var command = FireCommand(
            fireID: "F-20261124-000042", targetUUID: "user_5512093", symbol: "EURUSD", direction: .buy, entry: 1.0852,
            sl: 1.0832, tp: 1.0892, lot: 0.35, signalID: "ELITE_GUARD_EURUSD_1795961160", timestamp: time)
        modify(&command)
        return command
    }

    @Test func fireIsReadCorrectlyByTheNaiveExtractor() throws {
        let text = String(decoding: try CommandEncoder.encode(.fire(fire())), as: UTF8.self)
        #expect(!text.contains(" :") && !text.contains(": "))
        #expect(naiveExtract(text, "type") == "fire")
        #expect(naiveExtract(text, "fire_id") == "F-20261124-000042")
        #expect(naiveExtract(text, "target_uuid") == "user_5512093")
        #expect(naiveExtract(text, "direction") == "BUY")
        #expect(naiveExtract(text, "entry").flatMap(Double.init) == 1.0852)
        #expect(naiveExtract(text, "sl").flatMap(Double.init) == 1.0832)
        #expect(naiveExtract(text, "tp").flatMap(Double.init) == 1.0892)
        #expect(naiveExtract(text, "lot") == "0.35")
        #expect(naiveExtract(text, "timestamp") == "2026.11.24 14:06:00")
    }

    @Test func fixtureCommandsRoundTrip() throws {
        for name in ["command_fire.json", "command_close_ticket.json", "command_ping.json"] {
            let decoded = try EACommand.decode(try Fixtures.bytes("ea/\(name)"))
            let again = try EACommand.decode(try CommandEncoder.encode(decoded))
            #expect(again == decoded, "\(name)")
        }
    }

    @Test func hybridBlockIsCompact() throws {
        let command = fire { $0.hybrid = HybridOptions(enabled: true, partialClosePercent: 50) }
        let text = String(decoding: try CommandEncoder.encode(.fire(command)), as: UTF8.self)
        #expect(text.contains(#""hybrid":{"enabled":true"#))
        #expect(try EACommand.decode(Array(text.utf8)) == .fire(command))
    }

    @Test func smallAndLargeNumbersArePlainDecimals() throws {
        #expect(PlainDecimal.format(0.00001) == "0.00001")
        #expect(PlainDecimal.format(2641.5) == "2641.5")
        #expect(PlainDecimal.format(-0.5) == "-0.5")
        #expect(PlainDecimal.format(1e12) == "1000000000000")
        #expect(PlainDecimal.format(1e20) == nil)  // cannot be printed exactly: refused, never an exponent
        #expect(PlainDecimal.format(.infinity) == nil)
        let text = String(decoding: try CommandEncoder.encode(.fire(fire { $0.entry = 0.00001234 })), as: UTF8.self)
        #expect(naiveExtract(text, "entry") == "0.00001234")
    }

    @Test func refusesWhatWouldBreakTheEA() {
        #expect {
            try CommandEncoder.encode(.fire(fire { $0.signalID = "evil\"injection" }))
        } throws: { ($0 as? WireError)?.field == "signal_id" }
        #expect {
            try CommandEncoder.encode(.fire(fire { $0.source = "back\\slash" }))
        } throws: { ($0 as? WireError)?.field == "source" }
        #expect {
            try CommandEncoder.encode(.fire(fire { $0.signalID = String(repeating: "S", count: 5000) }))
        } throws: { ($0 as? WireError)?.code == .oversized }
        #expect {
            try CommandEncoder.encode(.fire(fire { $0.sl = .nan }))
        } throws: { ($0 as? WireError)?.field == "sl" }
    }
}
