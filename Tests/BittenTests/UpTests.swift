import BittenTestSupport
import Foundation
import Glibc
import Testing

extension EndToEnd {
    @Suite("bitten up with a managed Redis", .serialized)
    struct UpTests {
        @Test func upServesHealthAndStopsCleanlyOnSigterm() async throws {
            let bitten = try BittenProcess()
            try await bitten.waitUntilHealthy()
            let (status, health) = try await HTTP.json(bitten.httpBase + "/health")
            #expect(status == 200)
            #expect((health["redis"] as? [String: Any])?["reachable"] as? Bool == true)
            let services = (health["services"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(
                Set(services).isSuperset(of: ["gateway", "telemetry", "confirmations", "nodes", "monitor", "http"]))
            let ports = (health["ports"] as? [[String: Any]] ?? []).compactMap { $0["port"] as? Int }
            #expect(Set(ports) == Set(bitten.ports.filter { $0.key != "BITTEN_HTTP_PORT" }.values))
            let redis = try #require(bitten.managedRedis)
            #expect(processExists(redis.pid))
            // AOF is on in the managed Redis's own data directory.
            #expect(
                FileManager.default.fileExists(
                    atPath: bitten.dataDir.appendingPathComponent("redis/appendonlydir").path)
                    || FileManager.default.fileExists(
                        atPath: bitten.dataDir.appendingPathComponent("redis/appendonly.aof").path)
            )

            let (metricsStatus, metrics) = try await HTTP.get(bitten.httpBase + "/metrics")
            #expect(metricsStatus == 200)
            #expect(String(decoding: metrics, as: UTF8.self).contains("bitten_"))

            let took = await bitten.terminate(timeout: .seconds(10))
            #expect(took != nil && took! < .seconds(5), "took \(String(describing: took))\n\(bitten.logTail())")
            #expect(!processExists(redis.pid), "the managed redis-server must stop with bitten")
        }

        /// A dashboard's event stream (here with a 60 s interval) ends when the server shuts down: it does not hold
        /// the stop until its next event.
        @Test func anOpenEventStreamDoesNotHoldAStop() async throws {
            let bitten = try BittenProcess()
            try await bitten.waitUntilHealthy()
            let port = try #require(bitten.ports["BITTEN_HTTP_PORT"])
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            #expect(connected == 0)
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let request = "GET /events?interval=60 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            _ = request.withCString { send(fd, $0, strlen($0), 0) }
            var received = ""
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while !received.contains("event: snapshot") {
                let count = recv(fd, &buffer, buffer.count, 0)
                guard count > 0 else { break }
                received += String(decoding: buffer[0..<count], as: UTF8.self)
            }
            #expect(received.contains("event: snapshot"), "\(received.prefix(300))")
            let took = await bitten.terminate(timeout: .seconds(30))
            #expect(took != nil && took! < .seconds(20), "took \(String(describing: took))\n\(bitten.logTail())")
        }

        @Test func unknownRouteIsAJSONError() async throws {
            let bitten = try BittenProcess()
            try await bitten.waitUntilHealthy()
            let (status, body) = try await HTTP.json(bitten.httpBase + "/no/such/thing")
            #expect(status == 404)
            let error = body["error"] as? [String: Any]
            #expect(error?["code"] as? String == "not_found")
            let (badStatus, badBody) = try await HTTP.json(bitten.httpBase + "/nodes?limit=100000")
            #expect(badStatus == 400)
            #expect(((badBody["error"] as? [String: Any])?["message"] as? String)?.contains("limit") == true)
            _ = await bitten.terminate()
        }

        @Test func externalRedisFromTheEnvironmentIsUsedInstead() async throws {
            let redis = try RedisServerProcess()
            let bitten = try BittenProcess(environment: ["BITTEN_REDIS_URL": redis.url])
            try await bitten.waitUntilHealthy()
            #expect(bitten.managedRedis == nil)
            _ = await bitten.terminate()
            #expect(RedisServerProcess.isUp(port: redis.port), "an external Redis is not bitten's to stop")
        }
    }
}
