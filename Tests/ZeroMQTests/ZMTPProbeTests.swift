import BittenTestSupport
import Foundation
import Logging
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
        #expect(throws: ZMTPProbe.Failure.self) {
            try ZMTPProbe.read(Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".utf8))
        }
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
        #expect(throws: ZMTPProbe.Failure.self) {
            try ZMTPProbe.socketType(host: "127.0.0.1", port: FreePort.next(), timeout: 1)
        }
    }

    /// Each received message carries the sender's IP (`Peer-Address`), here from a second loopback
    /// source address (libzmq's `tcp://SOURCE:0;HOST:PORT`).
    @Test func messagesCarryThePeerAddress() throws {
        let context = try Context()
        let router = try Socket(context: context, type: .router)
        defer { router.close() }
        router.capturesPeerAddress = true
        try router.setReceiveTimeout(.seconds(5))
        let port = FreePort.next()
        try router.bind("tcp://127.0.0.1:\(port)")
        let near = try Socket(context: context, type: .dealer)
        let far = try Socket(context: context, type: .dealer)
        defer {
            near.close()
            far.close()
        }
        try near.setIdentity(Array("near".utf8))
        try far.setIdentity(Array("far".utf8))
        try near.connect("tcp://127.0.0.1:\(port)")
        try far.connect("tcp://127.0.0.2:0;127.0.0.1:\(port)")
        try near.send("hello")
        try far.send("hello")
        var seen: [String: String] = [:]
        for _ in 0..<2 {
            let message = try #require(try router.receive())
            seen[String(decoding: message.frames[0], as: UTF8.self)] = message.peerAddress
        }
        #expect(seen == ["near": "127.0.0.1", "far": "127.0.0.2"])
        // Off by default.
        let pull = try Socket(context: context, type: .pull)
        defer { pull.close() }
        try pull.setReceiveTimeout(.seconds(5))
        let other = FreePort.next()
        try pull.bind("tcp://127.0.0.1:\(other)")
        let push = try Socket(context: context, type: .push)
        defer { push.close() }
        try push.connect("tcp://127.0.0.1:\(other)")
        try push.send("x")
        #expect(try pull.receive()?.peerAddress == nil)
    }

    /// The same through a socket loop (how the server reads its EA sockets).
    @Test func loopSocketsCarryThePeerAddress() async throws {
        let context = try Context()
        let loop = try SocketLoop(context: context, logger: Logger(label: "bitten.test"))
        let router = try await loop.open(.router) { socket in
            socket.capturesPeerAddress = true
            try socket.bind("tcp://127.0.0.1:0")
        }
        let port = try #require(router.boundPort)
        let dealer = try Socket(context: context, type: .dealer)
        defer { dealer.close() }
        try dealer.setIdentity(Array("far".utf8))
        try dealer.connect("tcp://127.0.0.2:0;127.0.0.1:\(port)")
        try dealer.send("hello")
        var peer: String?
        for await batch in router.messages {
            peer = batch.first?.peerAddress
            break
        }
        #expect(peer == "127.0.0.2")
        await loop.shutdown()
    }
}
