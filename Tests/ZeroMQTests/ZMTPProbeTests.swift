import BittenTestSupport
import Foundation
import Testing

@testable import ZeroMQ

/// `bitten check`'s ZMTP probe reads what a peer sends: a malformed peer gets a failure, never a crash.
@Suite("ZMTP probe")
struct ZMTPProbeTests {
    /// A peer's greeting (NULL mechanism) and READY command announcing `type`.
    static func handshake(_ type: String) -> [UInt8] {
        var body: [UInt8] = [5] + Array("READY".utf8)
        body += [11] + Array("Socket-Type".utf8) + [0, 0, 0, UInt8(type.utf8.count)] + Array(type.utf8)
        return ZMTPProbe.greeting + [0x04, UInt8(body.count)] + body
    }

    @Test func readsTheSocketTypeAndWaitsForMoreOfAShortGreeting() throws {
        let full = Self.handshake("ROUTER")
        #expect(try ZMTPProbe.read(full) == .socketType("ROUTER"))
        // Every prefix asks for more bytes, never reads past what arrived.
        for length in 0..<full.count {
            guard case .needMore(let needed) = try ZMTPProbe.read(Array(full.prefix(length))) else {
                Issue.record("a \(length)-byte prefix did not ask for more")
                continue
            }
            #expect(needed > length)
        }
    }

    @Test func refusesGarbageAndLyingLengths() {
        #expect(throws: ZMTPProbe.Failure.self) { try ZMTPProbe.read(Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".utf8)) }
        #expect(throws: ZMTPProbe.Failure.self) { try ZMTPProbe.read([0x16, 0x03, 0x01]) }  // a TLS client hello
        var full = Self.handshake("DEALER")
        // A property whose value length runs past the command.
        full[full.count - 7] = 0x7F
        #expect(throws: ZMTPProbe.Failure.self) { try ZMTPProbe.read(full) }
        // A property name longer than the command.
        var name = Self.handshake("PUB")
        name[64 + 2 + 6] = 200
        #expect(throws: ZMTPProbe.Failure.self) { try ZMTPProbe.read(name) }
        // A huge announced command (long size) is refused before anything is buffered for it.
        var long = ZMTPProbe.greeting + [0x06] + [0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        #expect(throws: ZMTPProbe.Failure.self) { try ZMTPProbe.read(long) }
        long = ZMTPProbe.greeting + [0x04, 0x00]  // an empty command: no READY
        #expect(throws: ZMTPProbe.Failure.self) { try ZMTPProbe.read(long) }
        // Random bytes after a valid greeting: a result or a failure, never a crash.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let tail = (0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? ZMTPProbe.read(ZMTPProbe.greeting + tail)
        }
    }

    @Test func probesARealSocket() throws {
        let context = try Context()
        let router = try Socket(context: context, type: .router)
        defer { router.close() }
        let port = FreePort.next()
        try router.bind("tcp://127.0.0.1:\(port)")
        #expect(try ZMTPProbe.socketType(host: "127.0.0.1", port: port, timeout: 3) == "ROUTER")
        #expect(throws: ZMTPProbe.Failure.self) { try ZMTPProbe.socketType(host: "127.0.0.1", port: FreePort.next(), timeout: 1) }
    }
}
