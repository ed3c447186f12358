import BittenCore
import BittenServices
import BittenTestSupport
import Foundation
import Logging
import Redis
import ServiceLifecycle
import Testing
import ZeroMQ

extension EndToEnd {
    @Suite("Gateway routing over a real ROUTER", .serialized)
    struct GatewayTests {
        @Test func commandsReachOnlyTheirEAAndUnknownUUIDsAreRefused() async throws {
            let server = try RedisServerProcess()
            let redis = RedisClient(url: try RedisURL(parsing: server.url), logger: Logger(label: "bitten.test"))
            defer { redis.shutdown() }
            var config = BittenConfig()
            config.zmqHost = "127.0.0.1"
            config.commandPort = FreePort.next()
            let sockets = try await ServerSockets.bind(config, selection: .command, logger: Logger(label: "test"))
            let board = ServiceBoard()
            let registry = NodeRegistry(redis: redis, board: board, logger: Logger(label: "test"))
            let gateway = GatewayService(
                socket: try #require(sockets.command), registry: registry, board: board,
                port: config.commandPort, pingInterval: .seconds(3600), logger: Logger(label: "test"))
            let running = Task { try await gateway.run() }

            let context = try Context()
            func ea(_ uuid: String) throws -> Socket {
                let socket = try Socket(context: context, type: .dealer)
                try socket.setIdentity(Array(uuid.utf8.dropLast()))  // what the real EA sends
                try socket.setReceiveTimeout(.milliseconds(500))
                try socket.connect("tcp://127.0.0.1:\(config.commandPort)")
                var hello = String(decoding: try Fixtures.bytes("ea/hello.json"), as: UTF8.self)
                hello = hello.replacingOccurrences(of: "user_5512093", with: uuid)
                try socket.send(hello)
                return socket
            }
            let alice = try ea("user_alice_01")
            let bob = try ea("user_bob_0001")
            #expect(
                try await eventually(.seconds(5)) {
                    gateway.isConnected("user_alice_01") && gateway.isConnected("user_bob_0001")
                })
            let time = MetaTraderTime(epochSeconds: 1_795_529_160)
            try await gateway.send(.ping(targetUUID: "user_bob_0001", pingID: "P-1", timestamp: time))
            let toBob = try #require(try bob.receive())
            #expect(
                try EACommand.decode(toBob.payload)
                    == .ping(targetUUID: "user_bob_0001", pingID: "P-1", timestamp: time))
            #expect(try alice.receive() == nil)

            await #expect {
                try await gateway.send(.ping(targetUUID: "user_nobody_1", pingID: "P-2", timestamp: time))
            } throws: { ($0 as? GatewayError)?.code == .notConnected }

            // A second UUID that maps to the same identity frame, while the first one's connection lives:
            // libzmq gives it no route (no ROUTER_HANDOVER), nothing it sends arrives, commands stay with alice.
            let impostor = try ea("user_alice_02")
            try await Task.sleep(for: .milliseconds(300))
            #expect(!gateway.isConnected("user_alice_02"))
            try await gateway.send(.ping(targetUUID: "user_alice_01", pingID: "P-3", timestamp: time))
            #expect(try alice.receive() != nil)
            #expect(try impostor.receive() == nil)
            // Once alice is gone, a new connection with that frame takes it; the first UUID's route is
            // removed, never sent to the wrong terminal.
            alice.close()
            impostor.close()
            try await Task.sleep(for: .milliseconds(200))
            let second = try ea("user_alice_02")
            #expect(try await eventually(.seconds(5)) { gateway.isConnected("user_alice_02") })
            #expect(!gateway.isConnected("user_alice_01"))
            await #expect {
                try await gateway.send(.ping(targetUUID: "user_alice_01", pingID: "P-4", timestamp: time))
            } throws: { ($0 as? GatewayError)?.code == .notConnected }
            #expect(try second.receive() == nil)

            await #expect {
                try await gateway.send(
                    .fire(
                        FireCommand(
                            fireID: "F\"1", targetUUID: "user_bob_0001", symbol: "EURUSD", direction: .buy,
                            entry: 1, sl: 0.9, tp: 1.1, lot: 0.1, signalID: "S", timestamp: time)))
            } throws: { ($0 as? GatewayError)?.code == .unencodable }

            for socket in [bob, second] { socket.close() }
            running.cancel()
            await sockets.shutdown()
        }
    }
}
