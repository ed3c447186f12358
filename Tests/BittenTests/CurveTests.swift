import BittenTestSupport
import Foundation
import Redis
import Testing
import ZeroMQ

extension EndToEnd {
    /// CURVE on the EA-facing sockets with a ZAP allow-list, against a running `bitten up`.
    @Suite("CURVE and the allow-list", .serialized)
    struct CurveTests {
        func bitten(_ arguments: [String], dataDir: URL) throws -> (Int32, String) {
            try runBitten(arguments, environment: ["BITTEN_DATA_DIR": dataDir.path])
        }

        func hello(_ uuid: String) -> String {
            #"{"type":"HELLO","target_uuid":"\#(uuid)","node_id":"NODE_1_1","account_login":"1","broker":"curve-test","company":"Bitten","terminal":"MetaTrader 5","currency":"USD","balance":0,"equity":0,"leverage":1,"margin":0,"free_margin":0,"margin_level":0,"symbols":1,"version":"2.05","timestamp":"2026.11.25 14:00:00"}"#
        }

        /// A DEALER that says HELLO as `uuid`, with CURVE keys or without.
        func dealer(_ context: Context, port: Int, uuid: String, keys: CurveKeyPair?, serverKey: String) throws
            -> Socket
        {
            let socket = try Socket(context: context, type: .dealer, linger: .zero)
            try socket.setIdentity(Array(uuid.utf8.dropLast()))
            if let keys { try socket.setCurveClient(keys: keys, serverKey: serverKey) }
            try socket.connect("tcp://127.0.0.1:\(port)")
            try socket.send(hello(uuid))
            return socket
        }

        @Test func onlyAllowedKeysGetInAndTheListReloadsWithoutARestart() async throws {
            guard Context.has("curve") else { return }
            let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent(
                "bitten-curve-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dataDir, withIntermediateDirectories: true)
            let (generated, output) = try bitten(["keys", "generate"], dataDir: dataDir)
            #expect(generated == 0, "\(output)")
            let secretPath = dataDir.appendingPathComponent("curve/server.key").path
            let mode = try FileManager.default.attributesOfItem(atPath: secretPath)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            let serverKey = try String(contentsOf: dataDir.appendingPathComponent("curve/server.pub"), encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(
                try bitten(["keys", "generate"], dataDir: dataDir).0 != 0,
                "an existing key is not replaced without --force")
            let friend = try CurveKeyPair.generate()
            let stranger = try CurveKeyPair.generate()
            #expect(try bitten(["keys", "allow", friend.publicKey], dataDir: dataDir).0 == 0)

            let server = try BittenProcess(environment: ["BITTEN_CURVE": "on"], dataDir: dataDir)
            defer { server.terminateAndWait() }
            try await server.waitUntilHealthy()
            let context = try Context()
            var sockets: [Socket] = []
            defer { for socket in sockets { socket.close() } }
            func node(_ uuid: String) async throws -> Int { try await HTTP.get(server.httpBase + "/nodes/\(uuid)").0 }

            sockets.append(
                try dealer(
                    context, port: server.commandPort, uuid: "user_curve_friend", keys: friend, serverKey: serverKey))
            sockets.append(
                try dealer(
                    context, port: server.commandPort, uuid: "user_curve_stranger", keys: stranger, serverKey: serverKey
                ))
            sockets.append(
                try dealer(context, port: server.commandPort, uuid: "user_curve_plain", keys: nil, serverKey: serverKey)
            )
            #expect(
                try await eventually(.seconds(10)) { try await node("user_curve_friend") == 200 }, "\(server.logTail())"
            )
            try await Task.sleep(for: .seconds(2))
            #expect(try await node("user_curve_stranger") == 404)
            #expect(try await node("user_curve_plain") == 404)
            #expect(server.logTail(200).contains("CURVE client refused"))

            // Allowed through the Redis set, no restart: the stranger's next connection gets in.
            let redis = try RedisConnection(
                url: RedisURL(host: "127.0.0.1", port: try #require(server.managedRedis).port))
            _ = try redis.command(["SADD", "curve:allowed_clients", stranger.publicKey])
            try await Task.sleep(for: .seconds(3))
            sockets.append(
                try dealer(
                    context, port: server.commandPort, uuid: "user_curve_stranger", keys: stranger, serverKey: serverKey
                ))
            #expect(try await eventually(.seconds(10)) { try await node("user_curve_stranger") == 200 })
            #expect(try await node("user_curve_plain") == 404)
            try? FileManager.default.removeItem(at: dataDir)
        }
    }
}
