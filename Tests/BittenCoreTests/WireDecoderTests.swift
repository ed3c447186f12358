import BittenTestSupport
import Foundation
import Testing

@testable import BittenCore

@Suite("EA wire decoders")
struct WireDecoderTests {
    static let messageFixtures = [
        "hello.json", "heartbeat_dealer.json", "handshake.json", "heartbeat.json", "disconnect.json", "tick.json",
        "tick_gold.json", "ohlc.json", "confirmation_success.json", "confirmation_failed.json",
        "close_confirmation.json", "pong.json", "close_confirmation_v205.json", "close_all_confirmation_v205.json",
        "close_not_found_v205.json", "tick_suffixed.json", "hello_cp1252.bin",
    ]

    @Test(arguments: messageFixtures)
    func everyFixtureIsAccepted(_ name: String) throws {
        let message = try EAMessage.decode(try Fixtures.bytes("ea/\(name)"))
        #expect(message.userUUID == "user_5512093")
    }

    @Test func fixturesDecodeToTheRightValues() throws {
        guard case .hello(let hello) = try EAMessage.decode(try Fixtures.bytes("ea/hello.json"), channel: .command)
        else {
            Issue.record("hello.json is not a HELLO")
            return
        }
        #expect(hello.accountLogin == 94_017_233)
        #expect(hello.broker == "MetaQuotes-Demo")
        #expect(hello.account.margin == 21.70)
        #expect(hello.timestamp.epochSeconds == MetaTraderTime("2026.11.24 14:03:11")?.epochSeconds)
        guard case .handshake(let handshake) = try EAMessage.decode(try Fixtures.bytes("ea/handshake.json")) else {
            Issue.record("handshake.json is not a handshake")
            return
        }
        #expect(handshake.symbolList.count == 15)
        #expect(handshake.account.leverage == 500)
        guard case .confirmation(let failed) = try EAMessage.decode(try Fixtures.bytes("ea/confirmation_failed.json"))
        else {
            Issue.record("not a confirmation")
            return
        }
        #expect(!failed.succeeded)
        #expect(failed.ticket == 0)
        #expect(failed.message.contains("10019"))
    }

    /// What the EA v2.05 really sends: close price 0, one close_all answer with ticket 0, a close for a
    /// position the broker already closed, a broker-suffixed symbol, Windows-1252 text.
    @Test func theRealEAsAnswersDecode() throws {
        guard
            case .closeConfirmation(let closed) = try EAMessage.decode(
                try Fixtures.bytes("ea/close_confirmation_v205.json")),
            case .closeConfirmation(let all) = try EAMessage.decode(
                try Fixtures.bytes("ea/close_all_confirmation_v205.json")),
            case .closeConfirmation(let gone) = try EAMessage.decode(try Fixtures.bytes("ea/close_not_found_v205.json")),
            case .tick(let tick) = try EAMessage.decode(try Fixtures.bytes("ea/tick_suffixed.json"), channel: .market)
        else {
            Issue.record("a v2.05 fixture decoded as another type")
            return
        }
        #expect(
            closed.succeeded && closed.closePrice == 0 && closed.ticket == 508_812_347
                && closed.commandType == "close_ticket")
        #expect(all.succeeded && all.ticket == 0 && all.lot == 0.70 && all.commandType == "close_all")
        #expect(!gone.succeeded && gone.message == "Position not found" && gone.ticket == 508_812_347)
        #expect(tick.symbol == "EURUSD.r" && tick.usable)
        // Windows-1252: é is the single byte 0xE9; the string is read as the characters the terminal meant.
        let (hello, legacy) = try EAMessage.decodeNoting(try Fixtures.bytes("ea/hello_cp1252.bin"), channel: .command)
        guard case .hello(let h) = hello else {
            Issue.record("hello_cp1252.bin is not a HELLO")
            return
        }
        #expect(legacy)
        #expect(h.company == "Société Générale Marchés")
        #expect(h.broker == "SocGen-Demo" && h.version == "2.05" && h.account.currency == "EUR")
        #expect(try EAMessage.decodeNoting(try Fixtures.bytes("ea/hello.json")).legacyText == false)
        // Every byte of 0x80–0x9F maps to its code-page character (0x80 is the euro sign, 0x92 a right quote).
        #expect(Windows1252.decode([0x80, 0x92, 0x41]) == "\u{20AC}\u{2019}A")
        #expect(Windows1252.decode(Windows1252.encode("Société €")) == "Société €")
    }

    /// Brokers' symbol names, zero or crossed quotes and negative margin levels are accepted; what
    /// would be unsafe in a key, a topic or a command is still refused.
    @Test func tolerantWhereTheEAIsOddStrictWhereItMatters() throws {
        func tick(_ symbol: String, bid: String = "1.08512", ask: String = "1.08519") -> [UInt8] {
            Array(
                #"{"type":"TICK","node_id":"N_1","user_uuid":"user_5512093","symbol":"\#(symbol)","bid":\#(bid),"ask":\#(ask),"spread":0.7,"volume":3,"timestamp":"2026.11.24 09:00:01"}"#
                    .utf8)
        }
        for symbol in [
            "EURUSD-ECN", "US30+", "[DJI30]", "EURUSDm", "#AAPL", "GOLD", "EURUSD.r", "USTEC!", "SP$500", "A&B",
        ] {
            guard case .tick(let t) = try EAMessage.decode(tick(symbol)) else {
                Issue.record("\(symbol)")
                continue
            }
            #expect(t.symbol == symbol)
        }
        for bad in ["EUR USD", "EUR:USD", "EUR*", "{X}", String(repeating: "A", count: 33), ""] {
            #expect(throws: WireError.self, "\(bad)") { try EAMessage.decode(tick(bad)) }
        }
        // A zero or crossed quote decodes but is not usable as a price.
        guard case .tick(let zero) = try EAMessage.decode(tick("EURUSD", bid: "0", ask: "0")),
            case .tick(let crossed) = try EAMessage.decode(tick("EURUSD", bid: "1.1", ask: "1.09"))
        else {
            Issue.record("zero or crossed quote refused")
            return
        }
        #expect(!zero.usable && !crossed.usable)
        #expect(throws: WireError.self) { try EAMessage.decode(tick("EURUSD", bid: "-1", ask: "1")) }
        // Negative equity gives a negative margin level: accepted.
        let confirmation = String(decoding: try Fixtures.bytes("ea/confirmation_success.json"), as: UTF8.self)
            .replacingOccurrences(of: #""margin_level":5622.01"#, with: #""margin_level":-35.20"#)
        guard case .confirmation(let c) = try EAMessage.decode(Array(confirmation.utf8)) else {
            Issue.record("negative margin level refused")
            return
        }
        #expect(c.account.marginLevel == -35.20)
        // Only the EA's wire reads Windows-1252: elsewhere (HTTP bodies) text must be UTF-8.
        #expect(throws: WireError.self) {
            try FieldReader(parsing: Array(#"{"name":"Soci"#.utf8) + [0xE9] + Array(#"t"}"#.utf8))
        }
        // Invalid UTF-8 is read as Windows-1252, but malformed JSON is still refused with a reason.
        #expect(throws: WireError.self) { try EAMessage.decode(Array(#"{"type":"HELLO","company":"Joe"s"}"#.utf8)) }
    }

    static let malformed: [(String, WireError.Code, String?)] = [
        ("missing_uuid.json", .missingField, "user_uuid"),
        ("oversized.json", .oversized, nil),
        ("unknown_type.json", .unknownType, "type"),
        ("truncated.json", .truncated, "ask"),
        ("binary.bin", .notJSON, nil),
        ("inf_number.json", .nonFinite, "margin_level"),
        ("negative_price.json", .outOfRange, "bid"),
        ("wrong_type.json", .wrongType, "ticket"),
        ("unescaped_quote.json", .malformed, "broker"),
    ]

    @Test(arguments: malformed)
    func malformedFixturesAreRejectedWithTheField(_ name: String, _ code: WireError.Code, _ field: String?) throws {
        let bytes = try Fixtures.bytes("ea/malformed/\(name)")
        #expect {
            try EAMessage.decode(bytes)
        } throws: { error in
            guard let wire = error as? WireError else { return false }
            return wire.code == code && wire.field == field && !wire.message.isEmpty
        }
    }

    @Test func everyMalformedFixtureIsCovered() throws {
        let names = Set(Self.malformed.map(\.0))
        #expect(Set(try Fixtures.files(in: "ea/malformed")) == names)
    }

    @Test func typeFromAnotherChannelIsRefused() throws {
        #expect {
            try EAMessage.decode(try Fixtures.bytes("ea/tick.json"), channel: .confirm)
        } throws: { ($0 as? WireError)?.code == .unknownType }
    }

    @Test func wrongTypesAndDuplicatesNameTheField() {
        let cases: [(String, WireError.Code, String)] = [
            (
                #"{"type":"pong","ping_id":7,"node_id":"N","user_uuid":"user_1234","timestamp":"2026.11.24 14:07:00"}"#,
                .wrongType, "ping_id"
            ),
            (
                #"{"type":"pong","ping_id":"P","ping_id":"Q","node_id":"N","user_uuid":"user_1234","timestamp":"2026.11.24 14:07:00"}"#,
                .duplicateField, "ping_id"
            ),
            (
                #"{"type":"pong","ping_id":"P","node_id":"N","user_uuid":"user_1234","timestamp":"2026-11-24T14:07:00"}"#,
                .badTimestamp, "timestamp"
            ),
            (
                #"{"type":"pong","ping_id":"P","node_id":"N","user_uuid":"a b","timestamp":"2026.11.24 14:07:00"}"#,
                .outOfRange, "user_uuid"
            ),
            (
                #"{"type":"pong","ping_id":"\#(String(repeating: "x", count: 100))","node_id":"N","user_uuid":"user_1234","timestamp":"2026.11.24 14:07:00"}"#,
                .tooLong, "ping_id"
            ),
            (
                #"{"type":"TICK","node_id":"N","user_uuid":"user_1234","symbol":"EURUSD","bid":1e999,"ask":1,"spread":1,"volume":1,"timestamp":"2026.11.24 14:07:00"}"#,
                .nonFinite, "bid"
            ),
            (#"{"type":true}"#, .wrongType, "type"),
        ]
        for (text, code, field) in cases {
            #expect {
                try EAMessage.decode(Array(text.utf8))
            } throws: { error in
                let wire = error as? WireError
                return wire?.code == code && wire?.field == field
            }
        }
        #expect(throws: WireError.self) { try EAMessage.decode(Array("[1,2]".utf8)) }
        #expect(throws: WireError.self) { try EAMessage.decode([]) }
    }

    /// `\u` escapes: a character outside the BMP comes as a surrogate pair (JSON.stringify and Python's json write
    /// it so); an unpaired surrogate or a bad digit is refused with the field.
    @Test func unicodeEscapesIncludingSurrogatePairs() throws {
        let text = #"{"note":"\ud83d\ude00 caf\u00e9 \u001f","x":1}"#
        let fields = try JSONParser.parseObject(Array(text.utf8))
        #expect(fields["note"] == .string("\u{1F600} caf\u{E9} \u{1F}"))
        for bad in [
            #"{"a":"\ud83d"}"#, #"{"a":"\ud83dx"}"#, #"{"a":"\ude00"}"#, #"{"a":"\ud83d\u0041"}"#, #"{"a":"\u+abc"}"#,
        ] {
            #expect(throws: WireError.self, "\(bad)") { _ = try JSONParser.parseObject(Array(bad.utf8)) }
            do {
                _ = try JSONParser.parseObject(Array(bad.utf8))
            } catch {
                #expect(error.code == .malformed && error.field == "a", "\(bad): \(error)")
            }
        }
    }

    @Test func metaTraderTimestamps() {
        // date -u -d "2026-11-24 14:06:00" +%s
        #expect(MetaTraderTime("2026.11.24 14:06:00")?.epochSeconds == 1_795_529_160)
        #expect(MetaTraderTime("1970.01.01 00:00:00")?.epochSeconds == 0)
        #expect(MetaTraderTime(epochSeconds: 1_795_529_160).description == "2026.11.24 14:06:00")
        for bad in ["2026.13.01 00:00:00", "2026.02.30 00:00:00", "2026.11.24 24:00:00", "2026-11-24 14:06:00", "x"] {
            #expect(MetaTraderTime(bad) == nil)
        }
        #expect(MetaTraderTime("2024.02.29 12:00:00") != nil)
    }
}
