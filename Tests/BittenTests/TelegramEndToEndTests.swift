import BittenServices
import BittenTestSupport
import Foundation
import Redis
import Testing

extension EndToEnd {
    /// The Telegram front end to end: `bitten up` with a bot token and the Bot API pointed at a local stand-in, EAs
    /// faithful to the v2.05, real Redis, the CLI for the link code.
    @Suite("Telegram front end to end", .serialized)
    struct TelegramEndToEndTests {
        static let userChat: Int64 = 5_550_001
        static let strangerChat: Int64 = 5_550_002
        static let operatorChat: Int64 = 5_550_099

        /// Link with a code from `bitten user link`, fire from a command and from an announcement's button, a
        /// refusal explained, the fill told to the user, a forged and an unlinked press refused, an operator's halt.
        @Test func linkFireNotifyRefuseAndHaltFromTelegram() async throws {
            let standIn = try await BotAPIStandIn()
            defer { standIn.stop() }
            let environment = [
                "BITTEN_FIRE_TIMEOUT": "3", "BITTEN_MARKET_CLOSED_SILENCE": "false",
                "BITTEN_TELEGRAM_TOKEN": "123456:TEST_token-abcdef", "BITTEN_TELEGRAM_API": standIn.base,
                "BITTEN_TELEGRAM_OPERATORS": String(Self.operatorChat),
            ]
            let bitten = try BittenProcess(environment: environment)
            defer { bitten.terminateAndWait() }
            try await bitten.waitUntilHealthy()
            let running = try await startFleet(1, for: bitten, prefix: "user_tg_")
            defer { running.stop() }
            let uuid = try #require(running.uuids.first)
            _ = try await HTTP.sendJSON(
                "POST", bitten.httpBase + "/users", body: #"{"uuid":"\#(uuid)","tier":"CAPTAIN"}"#)

            // An unlinked chat is told how to link, and nothing else happens.
            standIn.message(from: Self.strangerChat, "/fire SIG_TG_1")
            #expect(
                try await eventually { standIn.texts(to: Self.strangerChat).contains { $0.contains("not linked") } })

            // The operator's CLI prints a one-time code; the user sends it.
            let (status, output) = try cli(["user", "link", uuid], against: bitten)
            #expect(status == 0, "\(output)")
            let code = try #require(output.split(separator: "\n").first.map(String.init))
            standIn.message(from: Self.userChat, "/start \(code)")
            #expect(
                try await eventually { standIn.texts(to: Self.userChat).contains { $0.hasPrefix("Linked to \(uuid)") } }
            )
            // A second use of the code links nothing.
            standIn.message(from: Self.strangerChat, "/start \(code)")
            #expect(
                try await eventually {
                    standIn.texts(to: Self.strangerChat).contains { $0.contains("unknown, used or expired") }
                })

            // A signal is announced to the subscribed user with a Fire button; a command fires it.
            let path = TradePathTests()
            _ = try await HTTP.sendJSON("POST", bitten.httpBase + "/signals", body: path.signal("SIG_TG_1"))
            #expect(try await eventually { standIn.buttons(to: String(Self.userChat)).contains("f:SIG_TG_1") })
            standIn.message(from: Self.userChat, "/fire SIG_TG_1")
            #expect(try await eventually { standIn.texts(to: Self.userChat).contains { $0.hasPrefix("Fired F-") } })
            // The EA fills it: the user is told, with the ticket.
            #expect(
                try await eventually {
                    standIn.texts(to: Self.userChat).contains { $0.hasPrefix("Filled F-") && $0.contains("#") }
                })
            // The same signal again: the first fire, not a second one.
            standIn.message(from: Self.userChat, "/fire SIG_TG_1")
            #expect(
                try await eventually {
                    standIn.texts(to: Self.userChat).contains { $0.contains("fired SIG_TG_1 already") }
                })
            // A refusal in one line with its code.
            standIn.message(from: Self.userChat, "/fire NO_SUCH_SIGNAL")
            #expect(
                try await eventually { standIn.texts(to: Self.userChat).contains { $0.contains("signal_not_found") } })

            // The button of a second signal fires it for the presser.
            _ = try await HTTP.sendJSON("POST", bitten.httpBase + "/signals", body: path.signal("SIG_TG_2"))
            #expect(try await eventually { standIn.buttons(to: String(Self.userChat)).contains("f:SIG_TG_2") })
            standIn.press(by: Self.userChat, in: Self.userChat, data: "f:SIG_TG_2")
            #expect(
                try await eventually {
                    let (_, fires) = try await HTTP.json(bitten.httpBase + "/fires?limit=50")
                    return (fires["fires"] as? [[String: Any]] ?? []).contains {
                        $0["signal_id"] as? String == "SIG_TG_2"
                    }
                })
            // A stranger pressing the same button fires nothing (not linked); a forged button is refused.
            standIn.press(by: Self.strangerChat, in: Self.userChat, data: "f:SIG_TG_2")
            standIn.press(by: Self.userChat, in: Self.userChat, data: "fire:SIG_TG_2:\(uuid)")
            #expect(
                try await eventually {
                    standIn.answers
                        .contains { $0.contains("not one of Bitten's") }
                })
            // /closeall asks first; a press from another chat is refused; the owner's press closes.
            standIn.message(from: Self.userChat, "/closeall")
            #expect(
                try await eventually { standIn.buttons(to: String(Self.userChat)).contains { $0.hasPrefix("ca:") } })
            let confirm = try #require(standIn.buttons(to: String(Self.userChat)).last { $0.hasPrefix("ca:") })
            standIn.press(by: Self.strangerChat, in: Self.userChat, data: confirm)
            #expect(
                try await eventually {
                    standIn.answers.contains { $0.contains("Link your account first") }
                })
            standIn.press(by: Self.userChat, in: Self.userChat, data: confirm)
            #expect(try await eventually { standIn.texts(to: Self.userChat).contains("Close-all sent to your EA.") })
            // Pressed twice: the confirmation works once.
            standIn.press(by: Self.userChat, in: Self.userChat, data: confirm)
            #expect(
                try await eventually {
                    standIn.answers.contains { $0.contains("has expired") }
                })

            // The operator halts from Telegram: fires are refused with trading_halted.
            standIn.message(from: Self.userChat, "/halt")
            #expect(try await eventually { standIn.texts(to: Self.userChat).contains("Only an operator may do that.") })
            standIn.message(from: Self.operatorChat, "/halt news")
            #expect(try await eventually { standIn.texts(to: Self.operatorChat).contains("Trading HALTED.") })
            let (_, control) = try await HTTP.json(bitten.httpBase + "/control")
            let system = control["system"] as? [String: Any] ?? [:]
            #expect(
                system["state"] as? String == "halted" && system["by"] as? String == "telegram:\(Self.operatorChat)")
            _ = try await HTTP.sendJSON("POST", bitten.httpBase + "/signals", body: path.signal("SIG_TG_3"))
            standIn.message(from: Self.userChat, "/fire SIG_TG_3")
            #expect(
                try await eventually { standIn.texts(to: Self.userChat).contains { $0.contains("trading_halted") } })
            // Every update was taken: the offset kept in Redis is past the last one queued.
            let next = standIn.shared.state.withLock { $0.nextUpdateID }
            let redis = try RedisConnection(
                url: RedisURL(host: "127.0.0.1", port: try #require(bitten.managedRedis).port))
            #expect(try await eventually { try redis.command(["GET", "telegram:offset"]).string == String(next) })
            let (_, metrics) = try await HTTP.get(bitten.httpBase + "/metrics")
            let text = String(decoding: metrics, as: UTF8.self)
            #expect(
                text.contains("bitten_telegram_refused_total"),
                "\(text.split(separator: "\n").filter { $0.contains("telegram") })")
        }

        /// A restart goes on from the stored offset: the updates handled before are not handled again.
        @Test func aRestartDoesNotReplayUpdates() async throws {
            let standIn = try await BotAPIStandIn()
            defer { standIn.stop() }
            let environment = [
                "BITTEN_MARKET_CLOSED_SILENCE": "false", "BITTEN_TELEGRAM_TOKEN": "123456:TEST_token-abcdef",
                "BITTEN_TELEGRAM_API": standIn.base,
            ]
            let first = try BittenProcess(environment: environment)
            try await first.waitUntilHealthy()
            standIn.message(from: Self.strangerChat, "/help")
            standIn.message(from: Self.strangerChat, "/status")
            #expect(try await eventually { standIn.texts(to: Self.strangerChat).count == 2 })
            first.terminateAndWait()
            // The stand-in keeps every update: a process that asked from an older offset would get both again.
            let callsBefore = standIn.calls.count
            let second = try BittenProcess(environment: environment, dataDir: first.dataDir, ports: first.ports)
            defer { second.terminateAndWait() }
            try await second.waitUntilHealthy()
            standIn.message(from: Self.strangerChat, "/positions")
            #expect(try await eventually { standIn.texts(to: Self.strangerChat).count == 3 })
            try await Task.sleep(for: .seconds(1))
            #expect(standIn.texts(to: Self.strangerChat).count == 3, "\(standIn.texts(to: Self.strangerChat))")
            let polls = standIn.calls[callsBefore...].filter { $0.method == "getUpdates" }.compactMap {
                ($0.body["offset"] as? NSNumber)?.int64Value
            }
            let asked = Set(polls)
            #expect(asked.min() == 102, "the new process asked from the stored offset: \(asked.sorted())")
        }

        func cli(_ arguments: [String], against system: BittenProcess) throws -> (Int32, String) {
            var environment = system.ports.mapValues(String.init)
            environment["BITTEN_DATA_DIR"] = system.dataDir.path
            environment["BITTEN_BIND_HOST"] = "127.0.0.1"
            return try runBitten(arguments, environment: environment)
        }
    }
}
