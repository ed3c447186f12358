import BittenTestSupport
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

extension EndToEnd {
    /// Bad HTTP input and the token rules against a running system.
    @Suite("HTTP hardening", .serialized)
    struct HTTPHardeningTests {
        static let token = "s3cret-T0KEN-for-tests"

        func request(_ method: String, _ url: String, body: Data? = nil, headers: [String: String] = [:]) async throws
            -> (Int, [String: Any])
        {
            var request = URLRequest(url: URL(string: url)!)
            request.httpMethod = method
            request.httpBody = body
            for (key, value) in headers { request.setValue(value, forHTTPHeaderField: key) }
            let (data, response) = try await URLSession.shared.data(for: request)
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, object)
        }

        func code(_ body: [String: Any]) -> String? { (body["error"] as? [String: Any])?["code"] as? String }

        @Test func badInputGetsA4xxWithAReasonAndTokensGuardEverything() async throws {
            let bitten = try BittenProcess(environment: [
                "BITTEN_API_TOKEN": Self.token, "BITTEN_PROTECT_READS": "true",
            ])
            defer { bitten.terminateAndWait() }
            try await bitten.waitUntilHealthy()
            let api = bitten.httpBase
            let auth = ["Authorization": "Bearer \(Self.token)", "Content-Type": "application/json"]

            // Reads need the token (header or access_token), /health does not; a wrong token is refused.
            #expect(try await request("GET", api + "/health").0 == 200)
            let (noToken, refusal) = try await request("GET", api + "/nodes")
            #expect(noToken == 401 && code(refusal) == "unauthorized")
            #expect(try await request("GET", api + "/nodes", headers: ["Authorization": "Bearer wrong"]).0 == 401)
            #expect(try await request("GET", api + "/nodes", headers: auth).0 == 200)
            #expect(try await request("GET", api + "/nodes?access_token=\(Self.token)").0 == 200)
            #expect(try await request("GET", api + "/?access_token=\(Self.token)").0 == 200)
            // The page needs the token too; its style and script hold no data and load without it.
            #expect(try await request("GET", api + "/").0 == 401)
            #expect(try await request("GET", api + "/dashboard.css").0 == 200)
            #expect(try await request("GET", api + "/dashboard.js").0 == 200)
            // Writes too.
            let user = Data(#"{"uuid":"user_hard_1","tier":"RECRUIT"}"#.utf8)
            #expect(
                try await request("POST", api + "/users", body: user, headers: ["Content-Type": "application/json"]).0
                    == 401)
            #expect(try await request("POST", api + "/users", body: user, headers: auth).0 == 201)

            // Bad bodies: wrong content type, invalid UTF-8, not JSON, oversized, wrong types.
            let (wrongType, wrongTypeBody) = try await request(
                "POST", api + "/users", body: user,
                headers: ["Authorization": "Bearer \(Self.token)", "Content-Type": "text/plain"])
            #expect(wrongType == 415, "\(wrongTypeBody)")
            var invalid = Data(#"{"uuid":"user_hard_2","tier":"RECRUIT","display_name":""#.utf8)
            invalid.append(contentsOf: [0xC3, 0x28, 0xFF])
            invalid.append(contentsOf: Data(#""}"#.utf8))
            let (utf8Status, utf8Body) = try await request("POST", api + "/users", body: invalid, headers: auth)
            #expect(utf8Status == 400 && "\(utf8Body)".contains("UTF-8"), "\(utf8Body)")
            #expect(try await request("POST", api + "/users", body: Data("not json".utf8), headers: auth).0 == 400)
            let huge = Data(
                ("{\"uuid\":\"user_hard_3\",\"pad\":\"" + String(repeating: "x", count: 200_000) + "\"}").utf8)
            let (tooBig, tooBigBody) = try await request("POST", api + "/users", body: huge, headers: auth)
            #expect(tooBig == 413 && code(tooBigBody) == "body_too_large", "\(tooBig) \(tooBigBody)")
            #expect(
                try await request(
                    "POST", api + "/users", body: Data(#"{"uuid":7,"tier":"RECRUIT"}"#.utf8), headers: auth
                ).0 == 400)

            // Paths and parameters.
            for path in [
                "/..%2F..%2Fetc%2Fpasswd", "/../../etc/passwd", "/static/..%2f..%2fbitten.pid", "/nodes/..%2F..%2Fetc",
            ] {
                let (status, body) = try await request("GET", api + path, headers: auth)
                #expect((400...404).contains(status) && body["error"] != nil, "\(path): \(status) \(body)")
            }
            #expect(try await request("GET", api + "/nodes?limit=100000000", headers: auth).0 == 400)
            #expect(try await request("GET", api + "/trades?limit=99999999", headers: auth).0 == 400)

            // The token never shows in /health or the logs.
            let (_, health) = try await HTTP.get(api + "/health")
            #expect(!String(decoding: health, as: UTF8.self).contains(Self.token))
            let logs = try FileManager.default.contentsOfDirectory(
                atPath: bitten.dataDir.appendingPathComponent("logs").path)
            for file in logs {
                let text =
                    (try? String(contentsOf: bitten.dataDir.appendingPathComponent("logs/\(file)"), encoding: .utf8))
                    ?? ""
                #expect(!text.contains(Self.token), "\(file) contains the token")
            }
            #expect(!bitten.logTail(500).contains(Self.token))
        }
    }
}
