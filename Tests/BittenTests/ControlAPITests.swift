import BittenCore
import Foundation
import Hummingbird
import Testing

@testable import BittenDashboard
@testable import BittenServices

/// `/control` through the router client against fakes: the system's state, a user's, what is refused, and what
/// the page and `GET /control` show.
@Suite("HTTP API: trading controls (router client, fake ports)")
struct ControlAPITests {
    typealias API = APIHandlerTests

    @Test func haltCloseOnlyAndResumeTheSystemWithWhoAndWhy() async throws {
        let control = FakeControl(processes: ["bitten/a/1", "bitten/b/2"])
        let client = try API.client(control: control)
        let halted = try await API.call(
            client, .post, "/control/halt", body: #"{"reason":"broker outage","by":"alice@ops","close_all":true}"#)
        #expect(halted.status == 200, "\(halted.json)")
        let trading = halted.json["trading"] as? [String: Any] ?? [:]
        #expect(trading["state"] as? String == "halted" && trading["by"] as? String == "alice@ops")
        #expect(trading["reason"] as? String == "broker outage" && trading["close_all"] as? Bool == true)
        #expect(trading["version"] as? Int == 1)
        #expect(halted.json["acknowledged"] as? [String] == ["bitten/a/1", "bitten/b/2"])
        #expect(try await control.read().state == .halted)
        // No body at all: the system, by "api".
        let closeOnly = try await API.call(client, .post, "/control/close-only")
        #expect(closeOnly.status == 200, "\(closeOnly.json)")
        #expect((closeOnly.json["trading"] as? [String: Any])?["by"] as? String == "api")
        #expect(try await control.read().state == .closeOnly)
        let shown = try await API.call(client, .get, "/control")
        #expect((shown.json["system"] as? [String: Any])?["state"] as? String == "close_only")
        #expect((shown.json["processes"] as? [Any])?.count == 2)
        #expect(try await API.call(client, .post, "/control/resume", body: "{}").status == 200)
        let resumed = try await control.read()
        #expect(resumed.state == .active && resumed.version == 3)
        // The snapshot carries it for the page's banner.
        _ = try await API.call(client, .post, "/control/halt", body: #"{"reason":"news"}"#)
        try await Task.sleep(for: .milliseconds(1_100))  // the snapshot is cached for a second
        let snapshot = try await API.call(client, .get, "/snapshot")
        let banner = snapshot.json["trading"] as? [String: Any] ?? [:]
        #expect(banner["state"] as? String == "halted" && banner["reason"] as? String == "news", "\(snapshot.json)")
    }

    @Test func aUsersStateGoesThroughTheTradeDeskAndIsListed() async throws {
        let trade = FakeTradeDesk()
        try await trade.save(UserRecord(uuid: "user_007", tier: .captain, displayName: "Bond", createdAt: 1))
        let client = try API.client(trade: trade)
        let done = try await API.call(
            client, .post, "/control/close-only", body: #"{"user_uuid":"user_007","reason":"margin call"}"#)
        #expect(done.status == 200 && done.json["user_uuid"] as? String == "user_007", "\(done.json)")
        #expect((done.json["trading"] as? [String: Any])?["version"] == nil)
        let listed = try await API.call(client, .get, "/control")
        let users = listed.json["users"] as? [[String: Any]] ?? []
        #expect(users.count == 1 && users.first?["uuid"] as? String == "user_007")
        #expect((users.first?["trading"] as? [String: Any])?["reason"] as? String == "margin call")
        let user = try await API.call(client, .get, "/users/user_007")
        #expect((user.json["trading"] as? [String: Any])?["state"] as? String == "close_only", "\(user.json)")
        // The system was not touched.
        #expect((listed.json["system"] as? [String: Any])?["state"] as? String == "active")
        let unknown = try await API.call(client, .post, "/control/halt", body: #"{"user_uuid":"nobody"}"#)
        #expect(unknown.status == 404 && unknown.code == "user_not_found")
    }

    @Test func badChangesAreRefusedWithTheirReason() async throws {
        let client = try API.client(token: "t0k")
        let auth: HTTPFields = [.contentType: "application/json", .authorization: "Bearer t0k"]
        #expect(try await API.call(client, .post, "/control/halt", body: "{}").status == 401)
        #expect(try await API.call(client, .get, "/control").status == 200)
        let resumeAll = try await API.call(
            client, .post, "/control/resume", body: #"{"close_all":true}"#, headers: auth)
        #expect(resumeAll.status == 422 && resumeAll.code == "close_all_on_resume", "\(resumeAll.json)")
        // null is "left out": the system.
        let nullUser = try await API.call(
            client, .post, "/control/close-only", body: #"{"user_uuid":null,"close_all":null}"#, headers: auth)
        #expect(nullUser.status == 200 && nullUser.json["user_uuid"] == nil, "\(nullUser.json)")
        let long = try await API.call(
            client, .post, "/control/halt", body: #"{"reason":"\#(String(repeating: "x", count: 201))"}"#,
            headers: auth)
        #expect(long.status == 400, "\(long.json)")
        let badUser = try await API.call(client, .post, "/control/halt", body: #"{"user_uuid":"a b"}"#, headers: auth)
        #expect(badUser.status == 400, "\(badUser.json)")
        let wrongType = try await API.call(client, .post, "/control/halt", body: #"{"close_all":"yes"}"#, headers: auth)
        #expect(wrongType.status == 400 && wrongType.code == "bad_field", "\(wrongType.json)")
        #expect(try await API.call(client, .get, "/control/halt").status == 405)
    }

    @Test func tracesOfASignalAndAFire() async throws {
        let client = try API.client()
        let fire = try await API.call(client, .get, "/fires/F-10/trace")
        #expect(fire.status == 200 && fire.json["signal_id"] as? String == "SIG_T", "\(fire.json)")
        #expect((fire.json["steps"] as? [[String: Any]])?.map { $0["step"] as? String } == ["checks", "sent"])
        let signal = try await API.call(client, .get, "/signals/SIG_T/trace?limit=1&offset=1")
        #expect(signal.status == 200 && signal.json["total_fires"] as? Int == 2, "\(signal.json)")
        #expect((signal.json["fires"] as? [[String: Any]])?.first?["fire_id"] as? String == "F-11")
        let none = try await API.call(client, .get, "/signals/NOPE/trace")
        #expect(none.status == 404 && none.code == "trace_not_found")
        #expect(try await API.call(client, .get, "/fires/F-99/trace").status == 404)
        #expect(try await API.call(client, .get, "/signals/SIG_T/trace?limit=0").status == 400)
        #expect(try await API.call(client, .get, "/fires/bad%20id/trace").status == 400)
    }

    @Test func aUsersOwnLimitsAreCheckedSetAndShownOverTheTiers() async throws {
        let trade = FakeTradeDesk()
        try await trade.save(UserRecord(uuid: "user_042", tier: .captain, displayName: "L", createdAt: 1))
        let client = try API.client(trade: trade)
        let set = try await API.call(
            client, .put, "/users/user_042", body: #"{"limits":{"daily_loss":3,"loss_streak":2,"cooldown_minutes":30}}"#
        )
        #expect(set.status == 200, "\(set.json)")
        let effective = set.json["effective_limits"] as? [String: Any] ?? [:]
        #expect(effective["daily_loss"] as? Double == 3 && effective["trades_per_day"] as? Int == 20, "\(effective)")
        #expect((set.json["limits"] as? [String: Any])?["loss_streak"] as? Int == 2)
        // 0 goes back to the tier's default; a streak without its cooldown is refused on its meaning.
        let cleared = try await API.call(client, .put, "/users/user_042", body: #"{"limits":{"daily_loss":0}}"#)
        #expect((cleared.json["effective_limits"] as? [String: Any])?["daily_loss"] as? Double == 5, "\(cleared.json)")
        let alone = try await API.call(
            client, .put, "/users/user_042", body: #"{"limits":{"cooldown_minutes":0}}"#)
        #expect(alone.status == 422 && alone.code == "bad_limits", "\(alone.json)")
        for bad in [#"{"trades_per_day":1000001}"#, #"{"loss_streak":-1}"#, #"{"daily_loss":101}"#] {
            let answer = try await API.call(client, .put, "/users/user_042", body: #"{"limits":\#(bad)}"#)
            #expect(answer.status == 400, "\(bad): \(answer.json)")
        }
    }

    @Test func withoutRedisTheControlsAre503() async throws {
        let client = try API.client(control: nil)
        let answer = try await API.call(client, .post, "/control/halt", body: "{}")
        #expect(answer.status == 503 && answer.code == "unavailable")
    }

    @Test func limitAndStateRefusalsAreConflicts() {
        for code in [
            FireRefusal.Code.tradingHalted, .closeOnly, .dailyLossLimit, .drawdownLimit, .openRiskLimit, .exposureLimit,
            .tradesPerDayLimit, .lossStreakCooldown, .concentrationLimit,
        ] {
            #expect(FireRefusal(code, "x").httpStatus == 409)
        }
    }
}
