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

    /// Property: the buffer-writing formatter prints what the string-building one it replaced printed
    /// (kept here as the reference), for random values of every magnitude, sign and digit count.
    @Test func plainDecimalsMatchTheReferenceFormatter() {
        func reference(_ value: Double, _ digits: Int) -> String? {
            guard value.isFinite else { return nil }
            func pow10(_ n: Int) -> Double { (0..<n).reduce(1.0) { r, _ in r * 10 } }
            var fractionDigits = min(max(digits, 0), 12)
            while fractionDigits > 0 && abs(value) * pow10(fractionDigits) >= 9.0e18 { fractionDigits -= 1 }
            let scale = pow10(fractionDigits)
            guard abs(value) * scale < 9.0e18 else { return nil }
            let scaled = Int64((abs(value) * scale).rounded())
            let negative = value < 0 && scaled != 0
            var text = String(scaled / Int64(scale))
            var fraction = String(scaled % Int64(scale))
            if fractionDigits > 0 {
                fraction = String(repeating: "0", count: fractionDigits - fraction.count) + fraction
                while fraction.hasSuffix("0") { fraction.removeLast() }
                if !fraction.isEmpty { text += "." + fraction }
            }
            return negative ? "-" + text : text
        }
        var rng = SplitMix64(seed: 7)
        var cases: [(Double, Int)] = [
            (0, 8), (-0.0, 8), (-0.000000001, 8), (0.5, 0), (-0.5, 0), (9.999999999, 8), (1e-12, 12),
            (123_456_789.123456789, 12), (9.2e18, 0), (8.9e18, 0), (-1e15, 8), (.nan, 8), (1.0852, -3),
        ]
        for _ in 0..<50_000 {
            let exponent = Int(rng.next() % 28) - 9
            let power = (0..<abs(exponent)).reduce(1.0) { r, _ in r * 10 }
            var value = rng.nextUnit() * (exponent >= 0 ? power : 1 / power)
            if rng.next() % 2 == 0 { value = -value }
            if rng.next() % 5 == 0 { value = (value * 100).rounded() / 100 }
            cases.append((value, Int(rng.next() % 14)))
        }
        var mismatches: [String] = []
        for (value, digits) in cases
        where PlainDecimal.format(value, maxFractionDigits: digits) != reference(value, digits) {
            mismatches.append(
                "\(value) @\(digits): \(PlainDecimal.format(value, maxFractionDigits: digits) ?? "nil") vs \(reference(value, digits) ?? "nil")"
            )
        }
        let count = mismatches.count
        #expect(count == 0, "first mismatches: \(mismatches.prefix(5))")
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
