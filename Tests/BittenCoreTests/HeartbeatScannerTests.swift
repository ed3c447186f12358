import BittenTestSupport
import Foundation
import Testing

@testable import BittenCore

/// The heartbeat's one-pass reader must never accept what the full decoder refuses, and what it accepts
/// must equal the decoder's message; it must take the EA's real heartbeats on both channels.
@Suite("Heartbeat scanner (the heartbeat's fast path)")
struct HeartbeatScannerTests {
    static func scan(_ bytes: [UInt8], _ channel: EAChannel) -> EAMessage? {
        bytes.withUnsafeBytes { HeartbeatScanner.scan($0, channel: channel) }
    }

    /// Nil is always allowed; a value must be the decoder's.
    static func agrees(_ bytes: [UInt8], _ channel: EAChannel) -> (agrees: Bool, scanned: Bool) {
        let decoded = try? EAMessage.decode(bytes, channel: channel)
        guard let scanned = scan(bytes, channel) else { return (true, false) }
        return (decoded == scanned, true)
    }

    static let dealer =
        #"{"type":"HEARTBEAT","target_uuid":"user_5512093","node_id":"NODE_94017233_1873450","currency":"USD","balance":10000.00,"equity":10008.10,"leverage":500,"margin":21.70,"free_margin":9986.40,"margin_level":46120.28,"ticks_processed":18342,"timestamp":"2026.11.24 14:03:41"}"#
    static let telemetry =
        #"{"type":"heartbeat","node_id":"NODE_94017233_1873450","user_uuid":"user_5512093","account":94017233,"currency":"USD","balance":10000.00,"equity":10008.10,"leverage":500,"free_margin":9986.40,"margin_level":46120.28,"symbols_monitored":15,"ticks_processed":18342,"socket_type":"DEALER","timestamp":"2026.11.24 14:03:41"}"#

    @Test func takesTheEAsHeartbeatsOnBothChannels() throws {
        for (name, channel) in [("heartbeat_dealer.json", EAChannel.command), ("heartbeat.json", .market)] {
            let bytes = try Fixtures.bytes("ea/\(name)")
            let scanned = try #require(Self.scan(bytes, channel), "\(name)")
            #expect(scanned == (try EAMessage.decode(bytes, channel: channel)), "\(name)")
            // Each heartbeat belongs to its own channel only.
            #expect(Self.scan(bytes, channel == .command ? .market : .command) == nil)
            #expect(Self.scan(bytes, .confirm) == nil)
        }
        // The account may come as digits in a string, and margin may be absent or given.
        for text in [
            Self.telemetry.replacingOccurrences(of: "94017233,", with: #""94017233","#),
            Self.telemetry.replacingOccurrences(of: #""equity""#, with: #""margin":0,"equity""#),
            Self.dealer.replacingOccurrences(of: #""margin":21.70,"#, with: ""),
        ] {
            let channel: EAChannel = text.contains("HEARTBEAT") ? .command : .market
            let scanned = try #require(Self.scan(Array(text.utf8), channel), "\(text)")
            #expect(scanned == (try EAMessage.decode(Array(text.utf8), channel: channel)))
        }
    }

    @Test(arguments: [
        "binary.bin", "inf_number.json", "missing_uuid.json", "negative_price.json", "oversized.json",
        "truncated.json", "unescaped_quote.json", "unknown_type.json", "wrong_type.json",
    ])
    func leavesMalformedMessagesToTheDecoder(_ name: String) throws {
        let bytes = try Fixtures.bytes("ea/malformed/\(name)")
        for channel in EAChannel.allCases {
            if Self.scan(bytes, channel) != nil {
                #expect(Self.agrees(bytes, channel).agrees, "\(name) on \(channel)")
            }
        }
    }

    @Test func leavesOtherFormsToTheDecoder() {
        let variants: [(String, String)] = [
            (
                "a repeated field",
                Self.dealer.replacingOccurrences(of: #""leverage":500"#, with: #""leverage":500,"balance":1"#)
            ),
            (
                "a repeated unknown field",
                Self.telemetry.replacingOccurrences(
                    of: #""socket_type":"DEALER""#, with: #""socket_type":"DEALER","socket_type":"PUSH""#)
            ),
            (
                "an unknown field that is not plain",
                Self.telemetry.replacingOccurrences(of: #""socket_type":"DEALER""#, with: #""socket_type":[1]"#)
            ),
            ("a missing field", Self.dealer.replacingOccurrences(of: #""free_margin":9986.40,"#, with: "")),
            ("a missing account", Self.telemetry.replacingOccurrences(of: #""account":94017233,"#, with: "")),
            ("an exponent", Self.dealer.replacingOccurrences(of: "10000.00", with: "1e4")),
            ("an escape", Self.dealer.replacingOccurrences(of: "USD", with: #"U\u0053D"#)),
            ("a Windows-1252 byte", Self.dealer.replacingOccurrences(of: "USD", with: "US\u{E9}")),
            ("a null margin", Self.dealer.replacingOccurrences(of: "21.70", with: "null")),
            ("a string for a number", Self.dealer.replacingOccurrences(of: "500", with: #""500""#)),
            ("a fractional leverage", Self.dealer.replacingOccurrences(of: "500", with: "500.5")),
            ("a negative margin", Self.dealer.replacingOccurrences(of: "21.70", with: "-21.70")),
            ("a negative tick count", Self.dealer.replacingOccurrences(of: "18342", with: "-18342")),
            ("letters in the account string", Self.telemetry.replacingOccurrences(of: "94017233,", with: #""9401x","#)),
            ("a bad UUID", Self.dealer.replacingOccurrences(of: "user_5512093", with: "u$")),
            ("an empty node id", Self.dealer.replacingOccurrences(of: "NODE_94017233_1873450", with: "")),
            ("a long currency", Self.dealer.replacingOccurrences(of: "USD", with: "USDUSDUSD")),
            ("a bad timestamp", Self.dealer.replacingOccurrences(of: "14:03:41", with: "14:03")),
            ("another type", Self.dealer.replacingOccurrences(of: "HEARTBEAT", with: "HELLO")),
            ("trailing data", Self.dealer + "}"),
        ]
        for (what, text) in variants {
            let channel: EAChannel = text.contains("\"heartbeat\"") ? .market : .command
            #expect(Self.scan(Array(text.utf8), channel) == nil, "\(what)")
        }
        // The decoder still takes some of them (its own reading of escapes, nulls, exponents…): only the
        // scanner steps aside.
        #expect((try? EAMessage.decode(Array(variants[5].1.utf8), channel: .command)) != nil)
        #expect((try? EAMessage.decode(Array(variants[8].1.utf8), channel: .command)) != nil)
    }

    /// Random damage to real heartbeats: byte flips, cuts, insertions of JSON punctuation.
    @Test func neverDisagreesWithTheDecoderOnDamagedMessages() throws {
        let seeds: [([UInt8], EAChannel)] = [
            (try Fixtures.bytes("ea/heartbeat_dealer.json"), .command),
            (try Fixtures.bytes("ea/heartbeat.json"), .market),
            (Array(Self.telemetry.replacingOccurrences(of: "94017233,", with: #""94017233","#).utf8), .market),
        ]
        var random = SplitMix64(seed: 2027)
        var scanned = 0
        for round in 0..<30_000 {
            let (seed, channel) = seeds[round % seeds.count]
            let bytes = Damage.apply(to: seed, &random)
            let (agrees, taken) = Self.agrees(bytes, channel)
            if taken { scanned += 1 }
            #expect(agrees, "\(String(decoding: bytes, as: UTF8.self))")
        }
        #expect(scanned > 1_000)
    }

    @Test func refusesOversizedInput() {
        let text = Self.dealer + String(repeating: " ", count: WireLimits.maxMessageBytes)
        #expect(Self.scan(Array(text.utf8), .command) == nil)
        #expect(throws: WireError.self) { try EAMessage.decode(Array(text.utf8), channel: .command) }
    }
}
