import BittenTestSupport
import Foundation
import Testing
import Yams

#if canImport(Glibc)
    import Glibc
#endif

/// Validates JSON values against the OpenAPI file's schemas (the subset it uses: type, nullable,
/// required, properties, additionalProperties, items, enum, minimum, maximum, $ref).
struct SchemaValidator {
    let document: [String: Any]

    init(yaml: String) throws {
        document = try #require(try Yams.load(yaml: yaml) as? [String: Any])
    }

    func resolve(_ schema: [String: Any]) -> [String: Any] {
        guard let ref = schema["$ref"] as? String else { return schema }
        var node: Any = document
        for part in ref.dropFirst(2).split(separator: "/") { node = (node as? [String: Any])?[String(part)] as Any }
        return resolve(node as? [String: Any] ?? [:])
    }

    /// The schema of the `status` response of `GET path` (a template such as `/nodes/{uuid}`).
    func responseSchema(_ path: String, status: Int = 200, method: String = "get") -> [String: Any]? {
        let paths = document["paths"] as? [String: Any]
        let operation = (paths?[path] as? [String: Any])?[method] as? [String: Any]
        let response = (operation?["responses"] as? [String: Any])?[String(status)] as? [String: Any]
        let content = (response?["content"] as? [String: Any])?["application/json"] as? [String: Any]
        return (content?["schema"] as? [String: Any]).map(resolve)
    }

    /// JSONSerialization gives booleans as a boolean NSNumber subclass (`1` is also `as? Bool` on Linux).
    static func isBoolean(_ value: Any) -> Bool {
        String(describing: type(of: value)).contains("Boolean") || type(of: value) == Bool.self
    }

    /// Problems found, each with the JSON path.
    func validate(_ value: Any?, _ schemaIn: [String: Any], at path: String = "$") -> [String] {
        let schema = resolve(schemaIn)
        guard let value, !(value is NSNull) else {
            return schema["nullable"] as? Bool == true
                ? [] : ["\(path): null where \(schema["type"] ?? "a value") is required"]
        }
        var problems: [String] = []
        let type = schema["type"] as? String
        switch type {
        case "object":
            guard let object = value as? [String: Any] else {
                return ["\(path): expected an object, got \(Swift.type(of: value))"]
            }
            for key in schema["required"] as? [String] ?? [] where object[key] == nil {
                problems.append("\(path): missing required field `\(key)`")
            }
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for (key, child) in object {
                if let propertySchema = properties[key] as? [String: Any] {
                    problems += validate(child, propertySchema, at: "\(path).\(key)")
                } else if let extra = schema["additionalProperties"] as? [String: Any] {
                    problems += validate(child, extra, at: "\(path).\(key)")
                }
            }
        case "array":
            guard let array = value as? [Any] else { return ["\(path): expected an array"] }
            if let items = schema["items"] as? [String: Any] {
                for (index, item) in array.enumerated() { problems += validate(item, items, at: "\(path)[\(index)]") }
            }
        case "string":
            guard let text = value as? String else { return ["\(path): expected a string, got \(value)"] }
            if let options = schema["enum"] as? [Any], !options.contains(where: { "\($0)" == text }) {
                problems.append("\(path): '\(text)' is not one of \(options)")
            }
        case "integer", "number":
            guard let number = value as? NSNumber, !Self.isBoolean(value) else {
                return ["\(path): expected a \(type!), got \(value)"]
            }
            if type == "integer", number.doubleValue.rounded() != number.doubleValue {
                problems.append("\(path): expected an integer, got \(number)")
            }
            if let minimum = (schema["minimum"] as? NSNumber)?.doubleValue, number.doubleValue < minimum {
                problems.append("\(path): \(number) is below \(minimum)")
            }
            if let maximum = (schema["maximum"] as? NSNumber)?.doubleValue, number.doubleValue > maximum {
                problems.append("\(path): \(number) is above \(maximum)")
            }
        case "boolean":
            if !Self.isBoolean(value) {
                problems.append("\(path): expected a boolean")
            }
        default:
            break
        }
        return problems
    }
}

/// Reads the first Server-Sent Event named `event` from `url` (plain TCP, no URLSession streaming on Linux).
func firstServerSentEvent(host: String = "127.0.0.1", port: Int, path: String, event: String, timeout: Double = 10)
    throws -> String
{
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr(host)
    var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { throw TestSupportError("cannot connect to \(host):\(port)") }
    let request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nAccept: text/event-stream\r\n\r\n"
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    var received = ""
    var buffer = [UInt8](repeating: 0, count: 65536)
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 { break }
        received += String(decoding: buffer[0..<n], as: UTF8.self)
        if let range = received.range(of: "event: \(event)\n"),
            let end = received.range(of: "\n\n", range: range.upperBound..<received.endIndex)
        {
            return String(received[range.lowerBound..<end.lowerBound])
        }
    }
    throw TestSupportError("no `\(event)` event within \(timeout) s; got: \(received.prefix(300))")
}

extension EndToEnd {
    @Suite("HTTP API and dashboard against a running demo system", .serialized)
    struct DashboardTests {
        @Test func everyEndpointMatchesTheOpenAPIFileAndErrorsAreJSON() async throws {
            let bitten = try BittenProcess(arguments: ["up", "--demo"])
            defer { bitten.terminateAndWait() }
            try await bitten.waitUntilHealthy()
            let api = bitten.httpBase
            // The demo fleet registers and the demo trader opens positions.
            #expect(
                try await eventually(.seconds(30)) {
                    let (_, health) = try await HTTP.json(api + "/health")
                    let (_, positions) = try await HTTP.json(api + "/positions")
                    return ((health["nodes"] as? [String: Any])?["online"] as? Int) == 25
                        && !((positions["positions"] as? [Any]) ?? []).isEmpty
                }, "\(bitten.logTail())")

            let (yamlStatus, yamlData) = try await HTTP.get(api + "/openapi.yaml")
            #expect(yamlStatus == 200)
            let validator = try SchemaValidator(yaml: String(decoding: yamlData, as: UTF8.self))

            let (_, nodesPage) = try await HTTP.json(api + "/nodes?limit=5")
            let uuid = try #require(((nodesPage["nodes"] as? [[String: Any]])?.first)?["uuid"] as? String)
            let (_, fires) = try await HTTP.json(api + "/fires")
            let fireID = try #require(((fires["fires"] as? [[String: Any]])?.first)?["fire_id"] as? String)
            let (_, signals) = try await HTTP.json(api + "/signals")
            let signalID = try #require(((signals["signals"] as? [[String: Any]])?.first)?["signal_id"] as? String)
            let checks: [(url: String, template: String)] = [
                ("/health", "/health"), ("/services", "/services"), ("/nodes", "/nodes"),
                ("/nodes?offset=10&limit=10&status=online&sort=balance&order=desc", "/nodes"),
                ("/nodes/\(uuid)", "/nodes/{uuid}"),
                ("/positions", "/positions"), ("/trades", "/trades"), ("/stats", "/stats"), ("/signals", "/signals"),
                ("/signals/\(signalID)", "/signals/{id}"), ("/fires", "/fires"),
                ("/fires/\(fireID)", "/fires/{fire_id}"),
                ("/users", "/users"), ("/users/\(uuid)", "/users/{uuid}"), ("/alerts", "/alerts"),
                ("/alerts?source=system&limit=5", "/alerts"),
                ("/citadel", "/citadel"), ("/citadel/EURUSD", "/citadel/{symbol}"),
                ("/citadel/score?symbol=EURUSD&direction=BUY&entry=1.085&sl=1.08", "/citadel/score"),
                ("/snapshot", "/snapshot"),
            ]
            for check in checks {
                let (status, data) = try await HTTP.get(api + check.url)
                #expect(status == 200, "\(check.url): \(status) \(String(decoding: data, as: UTF8.self).prefix(200))")
                let schema = try #require(validator.responseSchema(check.template), "no schema for \(check.template)")
                let body = try JSONSerialization.jsonObject(with: data)
                let problems = validator.validate(body, schema)
                #expect(problems.isEmpty, "\(check.url): \(problems.prefix(5))")
            }

            // Per-port message rates and service uptimes in /health.
            _ = try await HTTP.json(api + "/health")
            try await Task.sleep(for: .milliseconds(2500))
            let (_, rated) = try await HTTP.json(api + "/health")
            let market = (rated["ports"] as? [[String: Any]] ?? []).first { $0["name"] as? String == "market" }
            #expect((market?["received_per_second"] as? Double ?? 0) > 0, "\(market ?? [:])")
            #expect(
                (rated["services"] as? [[String: Any]] ?? []).allSatisfy {
                    ($0["uptime_seconds"] as? Double ?? -1) >= 0
                })

            // Pagination and filters.
            let (_, page3) = try await HTTP.json(api + "/nodes?offset=20&limit=10")
            #expect(page3["total"] as? Int == 25 && (page3["nodes"] as? [Any])?.count == 5)
            let (_, offline) = try await HTTP.json(api + "/nodes?status=offline")
            #expect(offline["total"] as? Int == 0)
            let (_, searched) = try await HTTP.json(api + "/nodes?q=\(uuid)")
            #expect((searched["nodes"] as? [[String: Any]])?.map { $0["uuid"] as? String } == [uuid])
            let (_, sorted) = try await HTTP.json(api + "/nodes?sort=uuid&order=desc&limit=25")
            let uuids = (sorted["nodes"] as? [[String: Any]] ?? []).compactMap { $0["uuid"] as? String }
            #expect(uuids == uuids.sorted(by: >) && uuids.count == 25)

            // Unknown routes and bad parameters: JSON error with a 4xx.
            let errorSchema = try #require(validator.resolve(["$ref": "#/components/schemas/Error"]) as [String: Any]?)
            let bad: [(String, Int)] = [
                ("/no/such/route", 404), ("/nodes?offset=-1", 400), ("/nodes?limit=5000", 400),
                ("/signals?offset=100001", 400),
                ("/nodes?sort=shoe_size", 400),
                ("/nodes?status=maybe", 400), ("/nodes/not%20a%20uuid", 400), ("/nodes/user_nobody", 404),
                ("/alerts?limit=0", 400),
                ("/alerts?source=ufo", 400), ("/trades?day=2026", 400), ("/trades?symbol=EUR%2FUSD", 400),
                ("/citadel/score?symbol=EURUSD", 400), ("/citadel/score?symbol=EURUSD&entry=abc", 400),
                ("/citadel/ZZZZZZ", 404),
                ("/events?interval=0", 400), ("/fires/F-NOPE", 404),
            ]
            for (url, expected) in bad {
                let (status, data) = try await HTTP.get(api + url)
                #expect(status == expected, "\(url): \(status)")
                let body = try? JSONSerialization.jsonObject(with: data)
                #expect(
                    validator.validate(body, errorSchema).isEmpty,
                    "\(url): \(String(decoding: data, as: UTF8.self).prefix(200))")
            }

            // The live stream sends snapshots in the documented shape; the page is served.
            let port = try #require(URL(string: api)?.port)
            let event = try firstServerSentEvent(port: port, path: "/events?interval=1", event: "snapshot")
            let json = try #require(event.split(separator: "\n").first { $0.hasPrefix("data: ") }).dropFirst(6)
            let snapshot = try JSONSerialization.jsonObject(with: Data(json.utf8))
            #expect(validator.validate(snapshot, try #require(validator.responseSchema("/snapshot"))).isEmpty)
            // The page, its style and its script are files of the server's own (nothing loaded from elsewhere).
            let (pageStatus, page) = try await HTTP.get(api + "/")
            let html = String(decoding: page, as: UTF8.self)
            #expect(
                pageStatus == 200 && html.contains(#"src="/dashboard.js""#) && html.contains(#"href="/dashboard.css""#))
            let (scriptStatus, script) = try await HTTP.get(api + "/dashboard.js")
            #expect(
                scriptStatus == 200
                    && String(decoding: script, as: UTF8.self).contains("new EventSource(withToken(\"/events\"))"))
            let (styleStatus, style) = try await HTTP.get(api + "/dashboard.css")
            #expect(styleStatus == 200 && !style.isEmpty)
            for file in [page, script, style] {
                let text = String(decoding: file, as: UTF8.self)
                #expect(
                    !text.contains("http://") && !text.contains("https://"),
                    "the page must not load anything from elsewhere")
            }
            let (_, metrics) = try await HTTP.get(api + "/metrics")
            let text = String(decoding: metrics, as: UTF8.self)
            for name in [
                "bitten_messages_received_total", "bitten_nodes_online", "bitten_health_score", "bitten_fires_total",
                "bitten_confirmations_pending", "bitten_redis_command_duration_seconds", "http_server_request_duration",
            ] {
                #expect(text.contains(name), "\(name) missing from /metrics")
            }
        }
    }
}
