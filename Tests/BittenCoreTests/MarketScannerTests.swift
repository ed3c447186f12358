import BittenTestSupport
import Foundation
import Testing

@testable import BittenCore

/// The relay's one-pass reader must never accept what the full decoder refuses, and what it accepts must
/// equal the decoder's message; it must also take the EA's real messages (or it would be no fast path).
@Suite("Market scanner (the relay's fast path)")
struct MarketScannerTests {
    static func scan(_ bytes: [UInt8]) -> ScannedMarketMessage? {
        bytes.withUnsafeBytes { MarketScanner.scan($0) }
    }

    /// The scanner's answer against the decoder's: nil is always allowed, a value must be the decoder's.
    static func agrees(_ bytes: [UInt8]) -> (agrees: Bool, scanned: Bool) {
        let decoded = try? EAMessage.decode(bytes, channel: .market)
        guard let scanned = scan(bytes) else { return (true, false) }
        return (decoded == scanned.message, true)
    }

    @Test(arguments: ["tick.json", "tick_gold.json", "tick_suffixed.json", "ohlc.json"])
    func takesTheEAsFixtures(_ name: String) throws {
        let bytes = try Fixtures.bytes("ea/\(name)")
        let scanned = try #require(Self.scan(bytes))
        #expect(scanned.message == (try EAMessage.decode(bytes, channel: .market)))
    }

    @Test func takesEveryRealTickAndReadsTheSameNumbers() throws {
        let lines = try Fixtures.lines("market/ticks_2025-09-15.jsonl")
        #expect(lines.count == 1500)
        for line in lines {
            guard let scanned = Self.scan(line) else {
                Issue.record("not scanned: \(String(decoding: line, as: UTF8.self))")
                continue
            }
            #expect(scanned.message == (try EAMessage.decode(line, channel: .market)))
        }
    }

    @Test(arguments: [
        "binary.bin", "inf_number.json", "missing_uuid.json", "negative_price.json", "oversized.json",
        "truncated.json", "unescaped_quote.json", "unknown_type.json", "wrong_type.json",
    ])
    func leavesMalformedMessagesToTheDecoder(_ name: String) throws {
        let bytes = try Fixtures.bytes("ea/malformed/\(name)")
        #expect(Self.scan(bytes) == nil)
        #expect(throws: WireError.self) { try EAMessage.decode(bytes, channel: .market) }
    }

    @Test func leavesOtherFormsToTheDecoder() {
        let base =
            #"{"type":"TICK","node_id":"N1","user_uuid":"user_1234567","symbol":"EURUSD","bid":1.1,"ask":1.2,"spread":1.0,"volume":3,"timestamp":"2026.11.24 14:03:12"}"#
        #expect(Self.scan(Array(base.utf8)) != nil)
        let variants: [(String, String)] = [
            (
                "an extra field the decoder ignores",
                base.replacingOccurrences(of: #""volume":3"#, with: #""volume":3,"x":1"#)
            ),
            ("a repeated field", base.replacingOccurrences(of: #""volume":3"#, with: #""volume":3,"bid":1.1"#)),
            ("a missing field", base.replacingOccurrences(of: #","volume":3"#, with: "")),
            ("an exponent", base.replacingOccurrences(of: "1.1,", with: "11e-1,")),
            ("an escape", base.replacingOccurrences(of: "EURUSD", with: #"EUR\u0055SD"#)),
            ("a Windows-1252 byte", base.replacingOccurrences(of: "N1", with: "N\u{E9}")),
            ("a null", base.replacingOccurrences(of: "3,", with: "null,")),
            ("a string for a number", base.replacingOccurrences(of: "1.1,", with: #""1.1","#)),
            ("a number for a string", base.replacingOccurrences(of: #""EURUSD""#, with: "7")),
            ("another type", base.replacingOccurrences(of: "TICK", with: "heartbeat")),
            ("a negative quote", base.replacingOccurrences(of: "1.1,", with: "-1.1,")),
            ("a bad timestamp", base.replacingOccurrences(of: "14:03:12", with: "25:03:12")),
            ("trailing data", base + "x"),
            ("a trailing point", base.replacingOccurrences(of: "1.1,", with: "1.,")),
        ]
        for (what, text) in variants {
            #expect(Self.scan(Array(text.utf8)) == nil, "\(what)")
        }
        // The decoder takes the first four and the Windows-1252 one; only the scanner steps aside.
        #expect((try? EAMessage.decode(Array(variants[0].1.utf8), channel: .market)) != nil)
    }

    @Test func readsNumbersExactlyAsTheDecoderDoes() {
        var random = SplitMix64(seed: 7)
        for _ in 0..<20_000 {
            let digits = Int(random.next() % 19) + 1
            let point = Int(random.next() % UInt64(digits + 1))
            var text = ""
            for index in 0..<digits {
                if index == point && index > 0 { text += "." }
                text += String(random.next() % 10)
            }
            let message =
                #"{"type":"TICK","node_id":"N1","user_uuid":"user_1234567","symbol":"EURUSD","bid":\#(text),"ask":\#(text),"spread":0,"volume":0,"timestamp":"2026.11.24 14:03:12"}"#
            let bytes = Array(message.utf8)
            guard case .tick(let tick)? = Self.scan(bytes),
                case .tick(let reference) = try? EAMessage.decode(bytes, channel: .market)
            else {
                Issue.record("\(text) not read by both")
                continue
            }
            #expect(tick.bid.bitPattern == reference.bid.bitPattern, "\(text)")
        }
    }

    /// Random damage to real messages: byte flips, cuts, insertions of JSON punctuation.
    @Test func neverDisagreesWithTheDecoderOnDamagedMessages() throws {
        let seeds = try ["tick.json", "tick_suffixed.json", "ohlc.json"].map { try Fixtures.bytes("ea/\($0)") }
        var random = SplitMix64(seed: 2026)
        var scanned = 0
        for round in 0..<30_000 {
            let bytes = Damage.apply(to: seeds[round % seeds.count], &random)
            let (agrees, taken) = Self.agrees(bytes)
            if taken { scanned += 1 }
            #expect(agrees, "\(String(decoding: bytes, as: UTF8.self))")
        }
        // Many damaged messages are still valid (a digit changed): the fast path takes those.
        #expect(scanned > 1_000)
    }

    @Test func refusesOversizedInput() {
        let padding = String(repeating: " ", count: WireLimits.maxMessageBytes)
        let text =
            #"{"type":"TICK","node_id":"N1","user_uuid":"user_1234567","symbol":"EURUSD","bid":1.1,"ask":1.2,"spread":1.0,"volume":3,"timestamp":"2026.11.24 14:03:12"}"#
            + padding
        #expect(Self.scan(Array(text.utf8)) == nil)
        #expect(throws: WireError.self) { try EAMessage.decode(Array(text.utf8), channel: .market) }
    }
}
