import BittenTestSupport
import Testing

@testable import BittenCore

@Suite("EA wire decoders")
struct WireDecoderTests {
    static let messageFixtures = [
        "hello.json", "heartbeat_dealer.json", "handshake.json", "heartbeat.json", "disconnect.json", "tick.json",
        "tick_gold.json", "ohlc.json", "confirmation_success.json", "confirmation_failed.json",
        "close_confirmation.json", "pong.json",
    ]

    @Test(arguments: messageFixtures)
    func everyFixtureIsAccepted(_ name: String) throws {
        let message = try EAMessage.decode(try Fixtures.bytes("ea/\(name)"))
        #expect(message.userUUID == "user_5512093")
    }

    @Test func fixturesDecodeToTheRightValues() throws {
        guard case .hello(let hello) = try EAMessage.decode(try Fixtures.bytes("ea/hello.json"), channel: .command) else {
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
        guard case .confirmation(let failed) = try EAMessage.decode(try Fixtures.bytes("ea/confirmation_failed.json")) else {
            Issue.record("not a confirmation")
            return
        }
        #expect(!failed.succeeded)
        #expect(failed.ticket == 0)
        #expect(failed.message.contains("10019"))
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
            (#"{"type":"pong","ping_id":7,"node_id":"N","user_uuid":"user_1234","timestamp":"2026.11.24 14:07:00"}"#, .wrongType, "ping_id"),
            (#"{"type":"pong","ping_id":"P","ping_id":"Q","node_id":"N","user_uuid":"user_1234","timestamp":"2026.11.24 14:07:00"}"#, .duplicateField, "ping_id"),
            (#"{"type":"pong","ping_id":"P","node_id":"N","user_uuid":"user_1234","timestamp":"2026-11-24T14:07:00"}"#, .badTimestamp, "timestamp"),
            (#"{"type":"pong","ping_id":"P","node_id":"N","user_uuid":"a b","timestamp":"2026.11.24 14:07:00"}"#, .outOfRange, "user_uuid"),
            (#"{"type":"pong","ping_id":"\#(String(repeating: "x", count: 100))","node_id":"N","user_uuid":"user_1234","timestamp":"2026.11.24 14:07:00"}"#, .tooLong, "ping_id"),
            (#"{"type":"TICK","node_id":"N","user_uuid":"user_1234","symbol":"EURUSD","bid":1e999,"ask":1,"spread":1,"volume":1,"timestamp":"2026.11.24 14:07:00"}"#, .nonFinite, "bid"),
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

    @Test func metaTraderTimestamps() {
        #expect(MetaTraderTime("2026.11.24 14:06:00")?.epochSeconds == 1_795_529_160)  // date -u -d "2026-11-24 14:06:00" +%s
        #expect(MetaTraderTime("1970.01.01 00:00:00")?.epochSeconds == 0)
        #expect(MetaTraderTime(epochSeconds: 1_795_529_160).description == "2026.11.24 14:06:00")
        for bad in ["2026.13.01 00:00:00", "2026.02.30 00:00:00", "2026.11.24 24:00:00", "2026-11-24 14:06:00", "x"] {
            #expect(MetaTraderTime(bad) == nil)
        }
        #expect(MetaTraderTime("2024.02.29 12:00:00") != nil)
    }
}
