import BittenCore
import Foundation
import Hummingbird
import Logging
import Testing

@testable import BittenDashboard
@testable import BittenServices

/// The HTTP API's handlers through Hummingbird's router test client, against in-memory fakes of the ports: the
/// generated layer's checks, the middleware (access, bodies, 405, errors), pagination, and the contract between the
/// services' records and the document's schemas.
@Suite("HTTP API handlers (router client, fake ports)")
struct APIHandlerTests {
    struct Answer {
        var status: Int
        var headers: HTTPFields
        var json: [String: Any]
        var code: String? { (json["error"] as? [String: Any])?["code"] as? String }
    }

    static func client(
        nodes: FakeNodes? = FakeNodes(count: 25), trade: FakeTradeDesk? = FakeTradeDesk(), token: String? = nil,
        protectReads: Bool = false, alerts: [AlertRecord] = [], control: FakeControl? = FakeControl()
    ) throws -> RouterClient {
        let ports = APIPorts(
            system: FakeSystem(alerts: alerts), nodes: nodes, trade: trade, citadel: nil, control: control,
            traces: FakeTraces(),
            notRunning: trade == nil ? ["trade": "not in this test"] : [:])
        let router = try DashboardApp.router(
            ports: ports, apiToken: token, protectReads: protectReads, logger: Logger(label: "test"))
        return RouterClient(router)
    }

    static func call(
        _ client: RouterClient, _ method: HTTPRequest.Method, _ uri: String, body: String? = nil,
        headers: HTTPFields = [.contentType: "application/json"]
    ) async throws -> Answer {
        let response = try await client.execute(
            uri: uri, method: method, headers: body == nil ? [:] : headers, body: body.map { ByteBuffer(string: $0) })
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any]
        return Answer(status: Int(response.status.code), headers: response.headers, json: object ?? [:])
    }

    @Test func listsShareOnePaginationSchemeAndCheckTheirBounds() async throws {
        do {
            let client = try Self.client()
            let page = try await Self.call(client, .get, "/nodes?limit=10&offset=20")
            #expect(page.status == 200)
            #expect(page.json["total"] as? Int == 25 && page.json["limit"] as? Int == 10)
            #expect(page.json["offset"] as? Int == 20 && (page.json["nodes"] as? [Any])?.count == 5)
            let sorted = try await Self.call(client, .get, "/nodes?sort=balance&order=desc&limit=3&status=online")
            let balances = (sorted.json["nodes"] as? [[String: Any]] ?? []).compactMap { $0["balance"] as? Double }
            #expect(balances == [12_400, 12_300, 12_200])
            #expect(sorted.json["total"] as? Int == 20)
            for bad in [
                "/nodes?limit=0", "/nodes?limit=501", "/nodes?offset=-1", "/fires?limit=1001",
                "/fires?offset=100001", "/alerts?limit=0", "/users?offset=-5",
                "/alerts?symbol=" + String(repeating: "0", count: 33), "/nodes?q=" + String(repeating: "0", count: 129),
            ] {
                let answer = try await Self.call(client, .get, bad)
                #expect(answer.status == 400 && answer.code == "bad_parameter", "\(bad): \(answer.json)")
            }
            // Types and enums are the generated code's: refused before any handler, with what was wrong.
            for bad in ["/nodes?limit=ten", "/nodes?order=sideways", "/nodes?sort=shoe_size", "/alerts?source=ufo"] {
                let answer = try await Self.call(client, .get, bad)
                #expect(answer.status == 400 && answer.code == "bad_parameter", "\(bad): \(answer.json)")
            }
        }
    }

    /// `/trades?day=`: the form is checked (400), then the calendar (422: the document's pattern allows 02-30).
    @Test func aDayOfTheRightFormThatNoCalendarHasIs422() async throws {
        let client = try Self.client()
        #expect(try await Self.call(client, .get, "/trades?day=2026-02-28").status == 200)
        let impossible = try await Self.call(client, .get, "/trades?day=2026-02-30")
        #expect(impossible.status == 422 && impossible.code == "no_such_day", "\(impossible.json)")
        // A parameter the chosen list does not use is checked all the same (schemathesis found `day` unchecked
        // beside a symbol).
        for bad in [
            "/trades?day=2026", "/trades?day=2026-2-3x", "/trades?day=20260203", "/trades?symbol=EURUSD&day=%2503L",
            "/trades?account=1&day=2026-1x-01", "/trades?symbol=EURUSD&account=-1",
        ] {
            let answer = try await Self.call(client, .get, bad)
            #expect(answer.status == 400 && answer.code == "bad_parameter", "\(bad): \(answer.json)")
        }
    }

    @Test func undeclaredMethodsAre405WithAllow() async throws {
        do {
            let client = try Self.client()
            let users = try await Self.call(client, .delete, "/users")
            #expect(users.status == 405 && users.code == "method_not_allowed")
            #expect(users.headers[.allow] == "GET, POST")
            let node = try await Self.call(client, .put, "/nodes/user_001", body: "{}")
            #expect(node.status == 405 && node.headers[.allow] == "GET")
            #expect(try await Self.call(client, .get, "/no/such/route").status == 404)
        }
    }

    @Test func oneMiddlewareGuardsWritesAndOptionallyReads() async throws {
        do {
            let client = try Self.client(token: "s3cret")
            let open = try await Self.call(client, .get, "/nodes")
            #expect(open.status == 200)
            let refused = try await Self.call(client, .post, "/users", body: #"{"uuid":"user_new"}"#)
            #expect(refused.status == 401 && refused.code == "unauthorized")
            let taken = try await Self.call(
                client, .post, "/users", body: #"{"uuid":"user_new"}"#,
                headers: [.contentType: "application/json", .authorization: "Bearer s3cret"])
            #expect(taken.status == 201, "\(taken.json)")
        }
        do {
            let client = try Self.client(token: "s3cret", protectReads: true)
            #expect(try await Self.call(client, .get, "/nodes").status == 401)
            #expect(try await Self.call(client, .get, "/nodes?access_token=s3cret").status == 200)
            #expect(try await Self.call(client, .get, "/health").status == 200)
        }
    }

    @Test func bodiesAreJSONBoundedAndChecked() async throws {
        do {
            let client = try Self.client()
            let text = try await Self.call(
                client, .post, "/users", body: "uuid=x", headers: [.contentType: "text/plain"])
            #expect(text.status == 415 && text.code == "unsupported_media_type")
            let big = "{\"uuid\":\"user_big\",\"display_name\":\"" + String(repeating: "x", count: 70_000) + "\"}"
            let tooBig = try await Self.call(client, .post, "/users", body: big)
            #expect(tooBig.status == 413 && tooBig.code == "body_too_large")
            let broken = try await Self.call(client, .post, "/users", body: "{not json")
            #expect(broken.status == 400 && broken.code == "bad_json", "\(broken.json)")
            let wrongType = try await Self.call(client, .post, "/users", body: #"{"uuid":42}"#)
            #expect(wrongType.status == 400 && wrongType.code == "bad_field", "\(wrongType.json)")
            let message = (wrongType.json["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(message.contains("uuid"), "\(message)")
            let missing = try await Self.call(client, .post, "/users", body: #"{"tier":"RECRUIT"}"#)
            #expect(missing.status == 400, "\(missing.json)")
            // Patterns and ranges the generated code does not check are checked by the handlers.
            let tier = try await Self.call(client, .post, "/users", body: #"{"uuid":"user_x_1","tier":"EMPEROR"}"#)
            #expect(tier.status == 400 && tier.code == "bad_field")
            let uuid = try await Self.call(client, .post, "/users", body: #"{"uuid":"a b"}"#)
            #expect(uuid.status == 400 && uuid.code == "bad_parameter")
        }
    }

    @Test func usersAreCreatedChangedAndTheirOverrideClearedWithZero() async throws {
        do {
            let client = try Self.client()
            let created = try await Self.call(
                client, .post, "/users", body: #"{"uuid":"user_a1","tier":"commander","risk_override":2}"#)
            #expect(created.status == 201 && created.json["tier"] as? String == "COMMANDER")
            #expect(created.json["risk_override"] as? Double == 2)
            let again = try await Self.call(client, .post, "/users", body: #"{"uuid":"user_a1"}"#)
            #expect(again.status == 409 && again.code == "user_exists")
            let cleared = try await Self.call(client, .put, "/users/user_a1", body: #"{"risk_override":0}"#)
            #expect(
                cleared.status == 200 && cleared.json["risk_override"] == nil
                    && cleared.json["tier"] as? String == "COMMANDER")
            let list = try await Self.call(client, .get, "/users?limit=1")
            #expect((list.json["users"] as? [Any])?.count == 1 && list.json["limit"] as? Int == 1)
            #expect(try await Self.call(client, .get, "/users/user_zz").status == 404)
        }
    }

    @Test func fireAnswersCreatedThenTheEarlierFireAndRefusalsCarryTheirCode() async throws {
        do {
            let client = try Self.client()
            let first = try await Self.call(client, .post, "/fire/SIG_1", body: #"{"user_uuid":"user_a1"}"#)
            #expect(first.status == 201 && first.json["fire_id"] as? String == "F-20261205-00-000001")
            let repeated = try await Self.call(client, .post, "/fire/SIG_1?user=user_a1")
            #expect(repeated.status == 200 && repeated.json["duplicate"] as? Bool == true, "\(repeated.json)")
            let nobody = try await Self.call(client, .post, "/fire/SIG_1")
            #expect(nobody.status == 422 && nobody.code == "missing_user")
            let noUser = try await Self.call(client, .post, "/fire/SIG_1", body: "{}")
            #expect(noUser.status == 400 && noUser.code == "bad_field", "\(noUser.json)")
            let fires = try await Self.call(client, .get, "/fires?limit=5&offset=0")
            #expect((fires.json["fires"] as? [Any])?.count == 1)
            #expect(try await Self.call(client, .get, "/fires/F-20261205-00-000001").status == 200)
            #expect(try await Self.call(client, .get, "/fires/F-20261205-00-000009").code == "fire_not_found")
        }
        do {
            let client = try Self.client(trade: FakeTradeDesk(refusal: FireRefusal(.noFreeSlot, "2 of 2 slots in use")))
            let refused = try await Self.call(client, .post, "/fire/SIG_1", body: #"{"user_uuid":"user_a1"}"#)
            #expect(refused.status == 409 && refused.code == "no_free_slot")
            let close = try await Self.call(client, .post, "/positions/77/close")
            #expect(close.status == 404 && close.code == "position_not_found")
        }
    }

    @Test func signalsOfTheRightShapeButNoMeaningAre422() async throws {
        do {
            let client = try Self.client()
            let signal =
                #"{"signal_id":"SIG_OK_1","symbol":"EURUSD","direction":"BUY","entry_price":1.085,"#
                + #""stop_loss":1.08,"take_profit":1.095,"engine_note":"kept"}"#
            let taken = try await Self.call(client, .post, "/signals", body: signal)
            #expect(taken.status == 201 && taken.json["signal_id"] as? String == "SIG_OK_1", "\(taken.json)")
            let meaningless = try await Self.call(
                client, .post, "/signals", body: #"{"signal_id":"X_1","symbol":"EURUSD"}"#)
            #expect(meaningless.status == 422 && meaningless.code == "invalid")
            let wrongType = try await Self.call(
                client, .post, "/signals", body: #"{"signal_id":"X_2","entry_price":"high"}"#)
            #expect(wrongType.status == 400)
            // The document's ranges and patterns, which the generated code does not check, are the handler's.
            for body in [
                #"{"signal_id":"X_3","entry_price":20000000}"#, #"{"signal_id":"X_4","direction":"Buy"}"#,
                #"{"signal_id":"X_5","symbol":"EUR/USD"}"#, #"{"signal_id":"X_6","confidence":101}"#,
                #"{"signal_id":"X_7","timeframe":"123456789"}"#, #"{"signal_id":"x"}"#,
            ] {
                let refused = try await Self.call(client, .post, "/signals", body: body)
                #expect(refused.status == 400, "\(body): \(refused.json)")
            }
        }
    }

    @Test func aServiceThisProcessDoesNotRunIs503WithTheReason() async throws {
        do {
            let client = try Self.client(nodes: nil, trade: nil)
            let fires = try await Self.call(client, .get, "/fires")
            #expect(fires.status == 503 && fires.code == "unavailable")
            #expect(
                ((fires.json["error"] as? [String: Any])?["message"] as? String)?.contains("not in this test") == true)
            #expect(try await Self.call(client, .get, "/nodes").status == 503)
            #expect(try await Self.call(client, .get, "/citadel").status == 503)
            // The process itself answers.
            #expect(try await Self.call(client, .get, "/health").status == 200)
            let snapshot = try await Self.call(client, .get, "/snapshot")
            #expect(snapshot.status == 200 && snapshot.json["nodes"] == nil)
        }
    }

    @Test func alertsFilterAndPage() async throws {
        let alerts = (0..<6).map { (index: Int) -> AlertRecord in
            let source = index % 2 == 0 ? "system" : "citadel"
            let kind = index < 3 ? "ea_offline" : "liquidity_sweep"
            return AlertRecord(
                source: source, kind: kind, symbol: "EURUSD", uuid: nil, message: "alert \(index)",
                timestamp: Double(100 - index))
        }
        do {
            let client = try Self.client(alerts: alerts)
            let page = try await Self.call(client, .get, "/alerts?limit=2&offset=1")
            #expect(
                (page.json["alerts"] as? [[String: Any]])?.compactMap { $0["message"] as? String } == [
                    "alert 1", "alert 2",
                ])
            let kind = try await Self.call(client, .get, "/alerts?kind=liquidity_sweep&source=citadel")
            #expect(
                (kind.json["alerts"] as? [[String: Any]])?.compactMap { $0["message"] as? String } == [
                    "alert 3", "alert 5",
                ])
        }
    }

    /// `make openapi` keeps a copy of the document it generated from: the served document must be that one, or
    /// the committed server code no longer matches it.
    @Test func theCommittedServerCodeWasGeneratedFromTheServedDocument() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let source = try String(
            contentsOf: root.appendingPathComponent("Tools/openapi/generated-from.yaml"), encoding: .utf8)
        #expect(source == OpenAPIDocument.yaml, "openapi.yaml changed since `make openapi`: run it, commit Generated/")
    }

    /// The fire path maps a fire record to the API's `Fire` field by field (`Contract.fire`): it must give what the
    /// trip through JSON gives, for every state and kind, with every field set and with only the required ones, and
    /// refuse a kind the document does not list.
    @Test func theDirectFireMappingGivesWhatTheJSONContractGives() throws {
        let full = FakeTradeDesk.record(id: "F-1", "SIG_1", "user_a1")
        var bare = try #require(FireRecord(hash: ["state": "pending", "user_uuid": "user_b2", "fire_id": "F-2"]))
        bare.duplicate = true
        for base in [full, bare] {
            for state in FireState.allCases {
                for kind in ["fire", "close"] {
                    var record = base
                    record.state = state
                    record.kind = kind
                    let viaJSON: Components.Schemas.Fire = try Contract.convert(record)
                    #expect(try Contract.fire(record) == viaJSON, "\(state) \(kind)")
                }
            }
        }
        var odd = full
        odd.kind = "modify"
        #expect(throws: Contract.Violation.self) { try Contract.fire(odd) }
        #expect(throws: Contract.Violation.self) { let _: Components.Schemas.Fire = try Contract.convert(odd) }
    }

    /// The generated types keep only the fields the document lists: every field a record encodes must be there,
    /// or the API would silently drop it.
    @Test func theDocumentListsEveryFieldOfTheRecords() throws {
        func keys(_ value: some Encodable, snake: Bool) throws -> Set<String> {
            let encoder = JSONEncoder()
            if snake { encoder.keyEncodingStrategy = .convertToSnakeCase }
            let object = try JSONSerialization.jsonObject(with: try encoder.encode(value)) as? [String: Any]
            return Set(object?.keys.map { $0 } ?? [])
        }
        let fire = FakeTradeDesk.record(id: "F-1", "SIG_1", "user_a1")
        let fireView: Components.Schemas.Fire = try Contract.convert(fire)
        let fireKeys = try keys(fire, snake: true)
        let fireViewKeys = try keys(fireView, snake: false)
        #expect(fireKeys.subtracting(fireViewKeys).isEmpty)
        let position = try #require(
            PositionRecord(hash: [
                "ticket": "1", "fire_id": "F-1", "signal_id": "S", "user_uuid": "u", "account": "1", "symbol": "EURUSD",
                "direction": "BUY", "lot": "0.1", "open_price": "1.1", "sl": "1.0", "tp": "1.2", "open_time": "1",
                "status": "closed", "close_price": "1.2", "closed_at": "2", "duration": "1", "profit": "10",
                "broker_symbol": "EURUSD.r", "close_price_source": "ea", "close_reason": "requested",
                "profit_source": "balance",
            ]))
        var priced = position
        priced.unrealizedProfit = 1
        priced.currentPrice = 1.15
        let positionView: Components.Schemas.Position = try Contract.convert(priced)
        let positionKeys = try keys(priced, snake: true)
        let positionViewKeys = try keys(positionView, snake: false)
        #expect(positionKeys.subtracting(positionViewKeys).isEmpty)
    }
}
