import BittenTestSupport
import Foundation
import Logging
import Synchronization
import Testing

@testable import ZeroMQ

@Suite("ZeroMQ socket pairs over TCP loopback")
struct SocketPairTests {
    let context: Context

    init() throws { context = try Context() }

    /// Waits for the first batch on a loop socket, failing after a few seconds instead of hanging.
    func firstBatch(_ socket: LoopSocket, within seconds: Int = 5) async throws -> [Message] {
        try await withThrowingTaskGroup(of: [Message]?.self) { group in
            group.addTask {
                for await batch in socket.messages { return batch }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            let result = try await group.next() ?? nil
            group.cancelAll()
            guard let result else { throw TestSupportError("no message within \(seconds) s") }
            return result
        }
    }

    @Test func pushPullDeliversInOrder() async throws {
        let loop = try SocketLoop(context: context, logger: Logger(label: "bitten.test"))
        let pull = try await loop.open(.pull) { try $0.bind("tcp://127.0.0.1:0") }
        let port = try #require(pull.boundPort)
        let push = try await loop.open(.push) { try $0.connect("tcp://127.0.0.1:\(port)") }
        try await push.send(batch: (0..<100).map { Message(strings: ["m\($0)"]) })
        var received: [String] = []
        for await batch in pull.messages {
            received += batch.map { String(decoding: $0.payload, as: UTF8.self) }
            if received.count >= 100 { break }
        }
        #expect(received == (0..<100).map { "m\($0)" })
        #expect(pull.stats.received == 100)
        await loop.shutdown()
    }

    @Test func routerDealerWithIdentities() async throws {
        let loop = try SocketLoop(context: context, logger: Logger(label: "bitten.test"))
        let router = try await loop.open(.router) { socket in
            try socket.setRouterMandatory(true)
            try socket.bind("tcp://127.0.0.1:0")
        }
        let port = try #require(router.boundPort)
        let alice = try await loop.open(.dealer) { socket in
            try socket.setIdentity(Array("user_alice".utf8))
            try socket.connect("tcp://127.0.0.1:\(port)")
        }
        let bob = try await loop.open(.dealer) { socket in
            try socket.setIdentity(Array("user_bob".utf8))
            try socket.connect("tcp://127.0.0.1:\(port)")
        }
        try await alice.send(Message(strings: ["hello from alice"]))
        try await bob.send(Message(strings: ["hello from bob"]))
        var seen: [String: String] = [:]
        for await batch in router.messages {
            for message in batch {
                seen[String(decoding: message.frames[0], as: UTF8.self)] = String(
                    decoding: message.payload, as: UTF8.self)
            }
            if seen.count == 2 { break }
        }
        #expect(seen == ["user_alice": "hello from alice", "user_bob": "hello from bob"])
        try await router.send(Message(strings: ["user_bob", "for bob only"]))
        let toBob = try await firstBatch(bob)
        #expect(toBob.map { String(decoding: $0.payload, as: UTF8.self) } == ["for bob only"])
        #expect(alice.stats.received == 0)
        await loop.shutdown()
    }

    @Test func routerMandatoryRefusesUnknownIdentity() async throws {
        let loop = try SocketLoop(context: context, logger: Logger(label: "bitten.test"))
        let router = try await loop.open(.router) { socket in
            try socket.setRouterMandatory(true)
            try socket.bind("tcp://127.0.0.1:0")
        }
        await #expect {
            try await router.send(Message(strings: ["nobody_here", "{}"]))
        } throws: { error in
            (error as? ZMQError)?.hostUnreachable == true
        }
        #expect(router.stats.failed == 1)
        await loop.shutdown()
    }

    @Test func pubSubFiltersByTopic() async throws {
        let loop = try SocketLoop(context: context, logger: Logger(label: "bitten.test"))
        let pub = try await loop.open(.pub) { try $0.bind("tcp://127.0.0.1:0") }
        let port = try #require(pub.boundPort)
        let sub = try await loop.open(.sub) { socket in
            try socket.subscribe("EURUSD")
            try socket.connect("tcp://127.0.0.1:\(port)")
        }
        // PUB drops until the subscription has propagated: publish until the first one arrives.
        var topics: [String] = []
        let collector = Task {
            for await batch in sub.messages {
                for message in batch { topics.append(String(decoding: message.frames[0], as: UTF8.self)) }
                if topics.count >= 3 { return topics }
            }
            return topics
        }
        for _ in 0..<200 {
            try await pub.send(batch: [
                Message(strings: ["GBPUSD", "{}"]), Message(strings: ["EURUSD", "{\"bid\":1}"]),
            ])
            try await Task.sleep(for: .milliseconds(10))
            if sub.stats.received >= 3 { break }
        }
        let result = await collector.value
        #expect(result.count >= 3)
        #expect(result.allSatisfy { $0 == "EURUSD" })
        await loop.shutdown()
    }

    /// A PULL and a PUB on one loop, and a SUB of that PUB on another loop.
    private func forwarder() async throws -> (SocketLoop, SocketLoop, LoopSocket, LoopSocket, LoopSocket) {
        let loop = try SocketLoop(context: context, logger: Logger(label: "bitten.test"))
        let other = try SocketLoop(context: context, logger: Logger(label: "bitten.test"))
        let pull = try await loop.open(.pull) { try $0.bind("tcp://127.0.0.1:0") }
        let pub = try await loop.open(.pub) { try $0.bind("tcp://127.0.0.1:0") }
        let pubPort = try #require(pub.boundPort)
        let sub = try await other.open(.sub) { socket in
            try socket.subscribe("")
            try socket.connect("tcp://127.0.0.1:\(pubPort)")
        }
        return (loop, other, pull, pub, sub)
    }

    /// PUB drops until the subscription arrives: sends probes through the forwarder until one comes back.
    private func awaitSubscription(push: LoopSocket, sub: LoopSocket) async throws {
        var probes = 0
        while sub.stats.received == 0 && probes < 200 {
            try await push.send(Message(strings: ["probe"]))
            probes += 1
            try await Task.sleep(for: .milliseconds(10))
        }
        try #require(sub.stats.received > 0)
    }

    /// A PULL handled inline republishes on a PUB of the same loop without a hop, in order; after
    /// `stopInlineHandling` batches go to the stream again.
    @Test func inlineHandlerForwardsOnTheLoopThread() async throws {
        let (loop, other, pull, pub, sub) = try await forwarder()
        let pullPort = try #require(pull.boundPort)
        let onLoopThread = Mutex<[Bool]>([])
        await pull.handleInline { batch in
            onLoopThread.withLock { $0.append(loop.isLoopThread) }
            pub.post(batch.map { Message([Array("T".utf8), $0.frames[0]]) })
        }
        let push = try await other.open(.push) { try $0.connect("tcp://127.0.0.1:\(pullPort)") }
        try await awaitSubscription(push: push, sub: sub)
        try await push.send(batch: (0..<500).map { Message(strings: ["m\($0)"]) })
        var received: [String] = []
        for await batch in sub.messages {
            received += batch.map { String(decoding: $0.frames[1], as: UTF8.self) }.filter { $0 != "probe" }
            if received.count >= 500 { break }
        }
        #expect(received == (0..<500).map { "m\($0)" })
        #expect(onLoopThread.withLock { $0.allSatisfy { $0 } && !$0.isEmpty })
        #expect(!loop.isLoopThread)

        await pull.stopInlineHandling()
        try await push.send(Message(strings: ["back to the stream"]))
        let batch = try await firstBatch(pull)
        #expect(batch.map { String(decoding: $0.payload, as: UTF8.self) } == ["back to the stream"])
        await loop.shutdown()
        await other.shutdown()
    }

    /// A raw handler sees every message and frame in order from the reused buffer (multipart and empty
    /// frames included) and forwards two borrowed frames on a PUB of the same loop without a copy.
    @Test func rawHandlerReadsFramesAndForwardsBorrowedBytes() async throws {
        let (loop, other, pull, pub, sub) = try await forwarder()
        let pullPort = try #require(pull.boundPort)
        let shapes = Mutex<[[Int]]>([])
        await pull.handleInlineRaw { batch in
            for index in 0..<batch.count {
                shapes.withLock { $0.append((0..<batch.frameCount(index)).map { batch.frame($0, of: index).count }) }
                let last = batch.frame(batch.frameCount(index) - 1, of: index)
                "T".utf8.withContiguousStorageIfAvailable { pub.post(UnsafeRawBufferPointer($0), last) }
            }
        }
        let push = try await other.open(.push) { try $0.connect("tcp://127.0.0.1:\(pullPort)") }
        try await awaitSubscription(push: push, sub: sub)
        shapes.withLock { $0.removeAll() }
        try await push.send(Message([Array("head".utf8), [], Array(repeating: 7, count: 70_000)]))
        try await push.send(batch: (0..<300).map { Message(strings: ["m\($0)"]) })
        var received: [[UInt8]] = []
        for await batch in sub.messages {
            received += batch.map { $0.frames[1] }.filter { $0 != Array("probe".utf8) }
            if received.count >= 301 { break }
        }
        #expect(received.first == Array(repeating: 7, count: 70_000))
        #expect(received.dropFirst().map { String(decoding: $0, as: UTF8.self) } == (0..<300).map { "m\($0)" })
        let seen = shapes.withLock { $0 }.filter { $0 != [5] }
        #expect(seen.first == [4, 0, 70_000])
        #expect(seen.count == 301)
        await loop.shutdown()
        await other.shutdown()
    }

    @Test func reqRepRoundTrip() async throws {
        let loop = try SocketLoop(context: context, logger: Logger(label: "bitten.test"))
        let rep = try await loop.open(.rep) { try $0.bind("tcp://127.0.0.1:0") }
        let port = try #require(rep.boundPort)
        let server = Task {
            for await batch in rep.messages {
                for message in batch {
                    try await rep.send(Message(strings: ["echo:" + String(decoding: message.payload, as: UTF8.self)]))
                }
            }
        }
        // A plain blocking REQ on a thread of its own, as a client tool would use it (blocking one of the few
        // threads of the test's pool could leave none to run the REP side, under a busy parallel run).
        let context = context
        let answer: String? = await withCheckedContinuation { done in
            Thread.detachNewThread {
                do {
                    let req = try Socket(context: context, type: .req)
                    defer { req.close() }
                    try req.setReceiveTimeout(.seconds(10))
                    try req.connect("tcp://127.0.0.1:\(port)")
                    try req.send("ping")
                    done.resume(returning: try req.receive().map { String(decoding: $0.payload, as: UTF8.self) })
                } catch {
                    done.resume(returning: "error: \(error)")
                }
            }
        }
        #expect(answer == "echo:ping")
        await loop.shutdown()
        server.cancel()
    }

    @Test func oversizedMessageIsRefusedWithoutCrashing() async throws {
        let loop = try SocketLoop(context: context, logger: Logger(label: "bitten.test"))
        let pull = try await loop.open(.pull) { socket in
            try socket.setMaxMessageSize(1024)
            try socket.bind("tcp://127.0.0.1:0")
        }
        let port = try #require(pull.boundPort)
        let big = try await loop.open(.push) { try $0.connect("tcp://127.0.0.1:\(port)") }
        try await big.send(Message([[UInt8](repeating: 65, count: 1_000_000)]))
        // The oversized peer is disconnected; a well-behaved peer still gets through.
        let small = try await loop.open(.push) { try $0.connect("tcp://127.0.0.1:\(port)") }
        try await small.send(Message(strings: ["small"]))
        let batch = try await firstBatch(pull)
        #expect(batch.map { String(decoding: $0.payload, as: UTF8.self) } == ["small"])
        #expect(pull.stats.received == 1)
        await loop.shutdown()
    }

    @Test func errorsCarryErrnoAndMessage() throws {
        let socket = try Socket(context: context, type: .pull)
        #expect {
            try socket.bind("tcp://not-an-address:abc")
        } throws: { error in
            guard let zmq = error as? ZMQError else { return false }
            return zmq.code != 0 && !zmq.message.isEmpty && zmq.description.contains("bind")
        }
    }

    @Test func curveKeysAreGenerated() throws {
        guard Context.has("curve") else { return }
        let pair = try CurveKeyPair.generate()
        #expect(pair.publicKey.count == 40)
        #expect(try CurveKeyPair.publicKey(forSecret: pair.secretKey) == pair.publicKey)
    }
}

@Suite("CURVE with a ZAP allow-list")
struct CurveTests {
    /// (It used to hang: the timeout branch awaited an unstructured collector task that nothing
    /// cancelled. The collection now runs inside the timed group.)
    @Test func knownKeyIsAdmittedUnknownKeyIsRefused() async throws {
        guard Context.has("curve") else { return }
        let context = try Context()
        let loop = try SocketLoop(context: context, logger: Logger(label: "bitten.test"))
        let serverKeys = try CurveKeyPair.generate()
        let friend = try CurveKeyPair.generate()
        let stranger = try CurveKeyPair.generate()
        let seen = Seen()
        let zap = try await ZAPHandler(loop: loop) { request in
            seen.add(request.curvePublicKey ?? "")
            return request.curvePublicKey == friend.publicKey
        }
        let serving = Task { await zap.serve() }
        let pull = try await loop.open(.pull) { socket in
            try socket.setCurveServer(secretKey: serverKeys.secretKey)
            try socket.setZAPDomain("bitten")
            try socket.bind("tcp://127.0.0.1:0")
        }
        let port = try #require(pull.boundPort)
        var pushes: [Socket] = []
        for (keys, text) in [(stranger, "from stranger"), (friend, "from friend")] {
            let push = try Socket(context: context, type: .push, linger: .seconds(1))
            try push.setCurveClient(keys: keys, serverKey: serverKeys.publicKey)
            try push.connect("tcp://127.0.0.1:\(port)")
            try push.send(text, dontWait: true)
            pushes.append(push)
        }
        let received: [String] = await withTaskGroup(of: [String]?.self) { group in
            group.addTask {
                var got: [String] = []
                for await batch in pull.messages {
                    got += batch.map { String(decoding: $0.payload, as: UTF8.self) }
                    if got.contains("from friend") { break }
                }
                // A little longer: the stranger's message must not show up late either.
                try? await Task.sleep(for: .milliseconds(300))
                return got
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(5))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? []
        }
        #expect(received == ["from friend"])
        #expect(seen.keys.contains(stranger.publicKey))
        #expect(seen.keys.contains(friend.publicKey))
        for push in pushes { push.close() }
        zap.close()
        serving.cancel()
        await loop.shutdown()
    }
}

final class Seen: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func add(_ key: String) { lock.withLock { stored.append(key) } }
    var keys: [String] { lock.withLock { stored } }
}

@Suite("SocketLoop coalescing")
struct SocketLoopCoalescingTests {
    /// With `coalesce`, a loop that has just received waits before it reads again, so what arrives meanwhile
    /// comes as one batch; a send asked for during the wait goes out at once. (Order only: the wait is 5 s so
    /// that a loaded machine cannot stretch the send past it.)
    @Test func aBusySocketIsReadInBatchesWhileSendsGoOutAtOnce() async throws {
        let context = try Context()
        let loop = try SocketLoop(context: context, coalesce: .seconds(5), logger: Logger(label: "bitten.test"))
        let pull = try await loop.open(.pull) { try $0.bind("tcp://127.0.0.1:0") }
        let out = try await loop.open(.push) { try $0.bind("tcp://127.0.0.1:0") }
        let (inPort, outPort) = (try #require(pull.boundPort), try #require(out.boundPort))
        let peerLoop = try SocketLoop(context: context, logger: Logger(label: "bitten.test"))
        let sender = try await peerLoop.open(.push) { try $0.connect("tcp://127.0.0.1:\(inPort)") }
        let receiver = try await peerLoop.open(.pull) { try $0.connect("tcp://127.0.0.1:\(outPort)") }
        var batches = pull.messages.makeAsyncIterator()
        var sent = receiver.messages.makeAsyncIterator()

        try await sender.send(Message(strings: ["a"]))
        let first = await batches.next()
        #expect(first?.map { String(decoding: $0.payload, as: UTF8.self) } == ["a"])
        // The loop waits now: these stay queued in libzmq…
        try await sender.send(Message(strings: ["b"]))
        try await sender.send(Message(strings: ["c"]))
        // …while its own send goes out during the wait.
        try await out.send(Message(strings: ["x"]))
        let echoed = await sent.next()
        #expect(echoed?.map { String(decoding: $0.payload, as: UTF8.self) } == ["x"])
        #expect(pull.stats.received == 1)
        let second = await batches.next()
        #expect(second?.map { String(decoding: $0.payload, as: UTF8.self) } == ["b", "c"])
        await loop.shutdown()
        await peerLoop.shutdown()
    }

    /// Without `coalesce` (the default) every wake-up reads at once.
    @Test func withoutCoalescingTheNextMessageIsReadAtOnce() async throws {
        let context = try Context()
        let loop = try SocketLoop(context: context, logger: Logger(label: "bitten.test"))
        let pull = try await loop.open(.pull) { try $0.bind("tcp://127.0.0.1:0") }
        let port = try #require(pull.boundPort)
        let peerLoop = try SocketLoop(context: context, logger: Logger(label: "bitten.test"))
        let sender = try await peerLoop.open(.push) { try $0.connect("tcp://127.0.0.1:\(port)") }
        var batches = pull.messages.makeAsyncIterator()
        try await sender.send(Message(strings: ["a"]))
        _ = await batches.next()
        try await sender.send(Message(strings: ["b"]))
        let second = await batches.next()
        #expect(second?.map { String(decoding: $0.payload, as: UTF8.self) } == ["b"])
        await loop.shutdown()
        await peerLoop.shutdown()
    }
}
