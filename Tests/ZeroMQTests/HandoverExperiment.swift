import BittenTestSupport
import Foundation
import Testing

@testable import ZeroMQ

/// A DEALER with `identity`, connecting from source address `source` to 127.0.0.1:`port`.
func makeDealer(_ context: Context, identity: String, from source: String, to port: Int) throws -> Socket {
    let socket = try Socket(context: context, type: .dealer)
    try socket.setIdentity(Array(identity.utf8))
    try socket.setReceiveTimeout(.milliseconds(300))
    try socket.connect("tcp://\(source):0;127.0.0.1:\(port)")
    return socket
}

/// What libzmq 4.3 does when two connections present one routing id to a ROUTER: the facts the EA
/// trust design rests on (two DEALERs with the same identity, the second from 127.0.0.2).
@Suite("libzmq: duplicate routing ids on a ROUTER")
struct DuplicateIdentityTests {
    struct Run {
        var delivered: [String] = []
        var commandReached = ""
    }

    func run(handover: Bool) throws -> Run {
        let context = try Context()
        let router = try Socket(context: context, type: .router)
        router.capturesPeerAddress = true
        try router.setRouterHandover(handover)
        try router.setRouterMandatory(true)
        try router.setReceiveTimeout(.milliseconds(300))
        let port = FreePort.next()
        try router.bind("tcp://127.0.0.1:\(port)")
        func dealer(_ source: String) throws -> Socket {
            try makeDealer(context, identity: "victim", from: source, to: port)
        }
        var result = Run()
        func drain() throws {
            while let m = try router.receive() { result.delivered.append(String(decoding: m.payload, as: UTF8.self)) }
        }
        let first = try dealer("127.0.0.1")
        try first.send("first-1")
        try drain()
        let second = try dealer("127.0.0.2")
        try second.send("second-1")
        Thread.sleep(forTimeInterval: 0.3)
        try first.send("first-2")
        try drain()
        try router.send(Message([Array("victim".utf8), Array("command".utf8)]))
        if (try first.receive()) != nil { result.commandReached = "first" }
        if (try second.receive()) != nil { result.commandReached = "second" }
        first.close()
        Thread.sleep(forTimeInterval: 0.5)
        try second.send("second-2")
        try drain()
        let restarted = try dealer("127.0.0.1")
        try restarted.send("restart-1")
        try drain()
        second.close()
        restarted.close()
        router.close()
        return result
    }

    /// With ROUTER_HANDOVER the newcomer takes the id, and the first connection's later messages are
    /// dropped (its connection stays open, orphaned) — an intruder silences the real EA's channel.
    @Test func handoverGivesTheIdToTheNewcomerAndOrphansTheFirst() throws {
        let run = try run(handover: true)
        #expect(run.delivered == ["first-1", "second-1", "second-2", "restart-1"])
        #expect(run.commandReached == "second")
    }

    /// Without it the newcomer is ignored while the first lives — and stays ignored after the first
    /// closes; only a new connection (the EA's restart) is taken.
    @Test func withoutHandoverTheFirstKeepsTheIdAndTheNewcomerIsIgnored() throws {
        let run = try run(handover: false)
        #expect(run.delivered == ["first-1", "first-2", "restart-1"])
        #expect(run.commandReached == "first")
    }
}

/// What the gateway builds on to keep routes with the pinned EA without ROUTER_HANDOVER: every message
/// names its connection (`ZMQ_SRCFD`), the monitor reports accepts and closes by the same descriptor,
/// and a connection shut down with `TCPLink.drop` comes back by itself — taking the id once it is free.
@Suite("libzmq: connections behind routing ids")
struct ConnectionLinkTests {
    @Test func aDroppedNewcomerReconnectsAndTakesTheIdOnceTheFirstIsGone() throws {
        let context = try Context()
        let router = try Socket(context: context, type: .router)
        router.capturesPeerAddress = true
        try router.setRouterHandover(false)
        try router.setReceiveTimeout(.milliseconds(500))
        let monitor = try Socket(context: context, type: .pair)
        try monitor.setReceiveTimeout(.milliseconds(500))
        try monitor.connect("inproc://links-test")
        try router.startMonitor("inproc://links-test", events: [.accepted, .disconnected])
        let port = FreePort.next()
        try router.bind("tcp://127.0.0.1:\(port)")
        defer {
            monitor.close()
            router.close()
        }
        func dealer(_ source: String) throws -> Socket {
            try makeDealer(context, identity: "same-id", from: source, to: port)
        }
        func event() throws -> MonitorEvent? { try monitor.receive().flatMap { MonitorEvent($0) } }

        let first = try dealer("127.0.0.1")
        try first.send("first")
        let fromFirst = try #require(try router.receive())
        let firstFD = try #require(fromFirst.sourceDescriptor)
        let accepted = try #require(try event())
        #expect(accepted.kind == .accepted && Int32(bitPattern: accepted.value) == firstFD)
        let firstEnd = try #require(TCPLink.remoteEndpoint(firstFD))
        #expect(firstEnd.host == "127.0.0.1" && TCPLink.localPort(firstFD) == port)

        // The newcomer gets no route: what it sends never arrives.
        let second = try dealer("127.0.0.2")
        try second.send("lost")
        let secondAccept = try #require(try event())
        let secondFD = Int32(bitPattern: secondAccept.value)
        let secondEnd = try #require(TCPLink.remoteEndpoint(secondFD))
        #expect(secondEnd.host == "127.0.0.2")
        #expect(try router.receive() == nil)

        // A drop is refused for a descriptor that is not that connection any more.
        #expect(!TCPLink.drop(secondFD, remote: (secondEnd.host, secondEnd.port + 1), localPort: port))
        first.close()
        let closed = try #require(try event())
        #expect(closed.kind == .disconnected && Int32(bitPattern: closed.value) == firstFD)
        // Still stuck after the first is gone; dropped, it reconnects and now holds the id.
        #expect(try router.receive() == nil)
        #expect(TCPLink.drop(secondFD, remote: secondEnd, localPort: port))
        var kinds: [MonitorEvent.Kind] = []
        while let next = try event() { kinds.append(next.kind) }
        #expect(kinds.contains(.disconnected) && kinds.contains(.accepted), "\(kinds)")
        try second.send("after the drop")
        let delivered = try #require(try router.receive())
        #expect(
            String(decoding: delivered.payload, as: UTF8.self) == "after the drop"
                && delivered.peerAddress == "127.0.0.2")
        try router.send(Message([Array("same-id".utf8), Array("command".utf8)]))
        #expect(try second.receive().map { String(decoding: $0.payload, as: UTF8.self) } == "command")
        second.close()
    }
}
