import BittenCore
import BittenServices
import BittenTestSupport
import Foundation
import Logging
import Testing

@testable import bitten

@Suite("Configuration precedence and validation")
struct ConfigTests {
    @Test func optionBeatsEnvironmentBeatsFileBeatsDefault() throws {
        let file = ["BITTEN_HTTP_PORT": "7003", "BITTEN_COMMAND_PORT": "7103", "BITTEN_MARKET_PORT": "7203"]
        let environment = ["BITTEN_HTTP_PORT": "7002", "BITTEN_COMMAND_PORT": "7102"]
        let options = ["BITTEN_HTTP_PORT": "7001"]
        let config = try ConfigLoader.resolve(options: options, environment: environment, file: file)
        #expect(config.httpPort == 7001)
        #expect(config.commandPort == 7102)
        #expect(config.marketPort == 7203)
        #expect(config.confirmPort == 5558)
        #expect(config.redisURL == nil)
        #expect(config.heartbeatTimeout == 60)
    }

    /// The Telegram front's settings: a token of the bot's shape, http(s) URLs, integer operator chats, a channel's id
    /// or @name; anything else is refused by name (the token's value is never echoed).
    @Test func telegramSettingsAreChecked() throws {
        let none = try ConfigLoader.resolve(options: [:], environment: [:], file: [:])
        #expect(none.telegram.token == nil && none.telegram.apiBase == "https://api.telegram.org")
        let config = try ConfigLoader.resolve(
            options: [:],
            environment: [
                "BITTEN_TELEGRAM_TOKEN": "123456:AAbb_cc-DDeeFF", "BITTEN_TELEGRAM_API": "http://127.0.0.1:9",
                "BITTEN_TELEGRAM_OPERATORS": "11, -1002", "BITTEN_TELEGRAM_CHANNEL": "@bitten_signals",
            ], file: [:])
        #expect(config.telegram.token == "123456:AAbb_cc-DDeeFF" && config.telegram.apiBase == "http://127.0.0.1:9")
        #expect(config.telegram.operators == [11, -1002] && config.telegram.channel == "@bitten_signals")
        let bad: [(String, String)] = [
            ("BITTEN_TELEGRAM_TOKEN", "secret-without-colon"), ("BITTEN_TELEGRAM_TOKEN", "abc:0123456789"),
            ("BITTEN_TELEGRAM_TOKEN", "12:short"), ("BITTEN_TELEGRAM_API", "ftp://api.telegram.org"),
            ("BITTEN_TELEGRAM_BITTEN_URL", "localhost:5567"), ("BITTEN_TELEGRAM_OPERATORS", "11,ops"),
            ("BITTEN_TELEGRAM_CHANNEL", "bitten signals"),
        ]
        for (setting, value) in bad {
            #expect(throws: ConfigError.self, "\(setting)=\(value)") {
                try ConfigLoader.resolve(options: [:], environment: [setting: value], file: [:])
            }
        }
        do {
            _ = try ConfigLoader.resolve(options: [:], environment: ["BITTEN_TELEGRAM_TOKEN": "12:short"], file: [:])
        } catch {
            #expect(error.setting == "BITTEN_TELEGRAM_TOKEN" && !error.message.contains("short"), "\(error)")
        }
    }

    @Test func yamlFileIsReadThroughTheCommandLineOptions() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bitten-\(UUID().uuidString).yaml")
            .path
        try "http_port: 7301\nheartbeat_timeout: 12\nredis_url: redis://127.0.0.1:7000/2\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let options = try ConfigOptions.parse(["--config", path, "--heartbeat-timeout", "9"])
        let config = try options.resolve(environment: ["BITTEN_HTTP_PORT": "7302"])
        #expect(config.httpPort == 7302)
        #expect(config.heartbeatTimeout == 9)
        #expect(config.redisURL?.port == 7000)
        #expect(config.redisURL?.database == 2)
    }

    @Test func instrumentsAndTiersComeFromTheConfigFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bitten-\(UUID().uuidString).yaml")
            .path
        try """
        http_port: 7401
        instruments:
          EURUSD: {max_lot: 20, lot_step: 0.1}
          US30: {tick_size: 1, contract_size: 1, pip_size: 1, profit_currency: USD}
        tiers:
          RECRUIT: {slots: 2, max_risk_percent: 1.5, daily_loss: 3, trades_per_day: 5, loss_streak: 3, cooldown_minutes: 60}
          CAPTAIN: {drawdown: 12.5, open_risk: 6, exposure_lots: 4}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try ConfigOptions.parse(["--config", path]).resolve(environment: [:])
        #expect(config.httpPort == 7401)
        #expect(config.instruments["EURUSD"]?.maxLot == 20)
        #expect(config.instruments["EURUSD"]?.lotStep == 0.1)
        #expect(config.instruments["EURUSD"]?.tickSize == 0.00001)  // the rest is kept
        #expect(config.instruments["US30"]?.contractSize == 1)
        #expect(config.instruments["US30"]?.digits == 0)
        #expect(config.tiers.rule(.recruit).slots == 2)
        #expect(config.tiers.rule(.recruit).maxRiskPercent == 1.5)
        #expect(config.tiers.rule(.recruit).riskMultiplier == 1.0)
        #expect(config.tiers.rule(.soldier).slots == 1)
        #expect(
            config.riskLimits[.recruit]
                == RiskLimits(dailyLossPercent: 3, tradesPerDay: 5, lossStreak: 3, cooldownMinutes: 60))
        #expect(config.riskLimits[.captain] == RiskLimits(drawdownPercent: 12.5, openRiskPercent: 6, exposureLots: 4))
        #expect(config.riskLimits[.soldier] == nil, "a tier not given has no limits")
        #expect(config.tiers.rule(.captain).slots == TierTable.standard.rule(.captain).slots)

        for (section, setting) in [
            ("instruments:\n  EURUSD: {tick_size: -1}", "instruments.EURUSD.tick_size"),
            ("instruments:\n  NEWONE: {tick_size: 1}", "instruments.NEWONE"),
            ("instruments:\n  EURUSD: {tick_sise: 1}", "instruments.EURUSD.tick_sise"),
            ("tiers:\n  EMPEROR: {slots: 1}", "tiers.EMPEROR"),
            ("tiers:\n  RECRUIT: {slots: 1.5}", "tiers.RECRUIT.slots"),
            ("tiers:\n  RECRUIT: {daily_loss: 101}", "tiers.RECRUIT.daily_loss"),
            ("tiers:\n  RECRUIT: {trades_per_day: 2.5}", "tiers.RECRUIT.trades_per_day"),
            ("tiers:\n  RECRUIT: {loss_streak: 3}", "tiers.RECRUIT.loss_streak"),
            ("tiers:\n  RECRUIT: {drawdown: x}", "tiers.RECRUIT.drawdown"),
        ] {
            try section.write(toFile: path, atomically: true, encoding: .utf8)
            #expect {
                try ConfigOptions.parse(["--config", path]).resolve(environment: [:])
            } throws: { error in
                (error as? ConfigError)?.setting == setting
            }
        }
    }

    @Test func operatorControlSettingsAreCheckedByName() throws {
        let config = try ConfigLoader.resolve(
            options: [:],
            environment: [
                "BITTEN_MAX_LOTS_PER_SYMBOL": "EURUSD=200,*=50", "BITTEN_MAX_LOTS_PER_SIGNAL": "25",
                "BITTEN_FLIGHT_RECORDER": "off", "BITTEN_NO_STOP_RISK": "5",
            ], file: [:])
        #expect(config.concentration == ConcentrationLimits(perSymbol: ["EURUSD": 200], anySymbol: 50, perSignal: 25))
        #expect(!config.flightRecorder && config.noStopRiskPercent == 5)
        #expect(try ConfigLoader.resolve(options: [:], environment: [:], file: [:]).flightRecorder)
        for (name, value) in [
            ("BITTEN_MAX_LOTS_PER_SYMBOL", "EURUSD:200"), ("BITTEN_MAX_LOTS_PER_SIGNAL", "-1"),
            ("BITTEN_FLIGHT_RECORDER", "maybe"), ("BITTEN_NO_STOP_RISK", "0"),
        ] {
            #expect {
                try ConfigLoader.resolve(options: [:], environment: [name: value], file: [:])
            } throws: { error in
                (error as? ConfigError)?.setting == name
            }
        }
    }

    @Test func citadelSettingsComeFromTheEnvironmentOrFile() throws {
        let config = try ConfigLoader.resolve(
            options: [:], environment: ["BITTEN_CITADEL_MULTIPLIERS": "danger=0, FORTRESS=1.5"],
            file: ["BITTEN_CITADEL_SWEEP_PIPS": "5", "BITTEN_CITADEL_ALERT_COOLDOWN": "60"])
        #expect(config.citadel.multiplier(for: .danger) == 0)
        #expect(config.citadel.multiplier(for: .fortress) == 1.5)
        #expect(config.citadel.multiplier(for: .caution) == 0.75)  // not named: default kept
        #expect(config.citadel.sweepThresholdPips == 5)
        #expect(config.citadel.alertCooldown == 60)
        #expect {
            try ConfigLoader.resolve(options: [:], environment: ["BITTEN_CITADEL_MULTIPLIERS": "SAFE=1"], file: [:])
        } throws: { ($0 as? ConfigError)?.setting == "BITTEN_CITADEL_MULTIPLIERS" && "\($0)".contains("SAFE=1") }
        #expect {
            try ConfigLoader.resolve(options: [:], environment: ["BITTEN_CITADEL_SWEEP_PIPS": "-3"], file: [:])
        } throws: { ($0 as? ConfigError)?.setting == "BITTEN_CITADEL_SWEEP_PIPS" }
    }

    /// Each of `values` for `setting` is refused with an error that names the setting.
    static func expectRefused(_ setting: String, _ values: [String]) {
        for bad in values {
            #expect {
                try ConfigLoader.resolve(options: [:], environment: [setting: bad], file: [:])
            } throws: { ($0 as? ConfigError)?.setting == setting }
        }
    }

    /// The EA sockets' read coalescing: 1 ms unless set, 0 turns it off, anything outside 0-100 ms is refused.
    @Test func socketCoalescingIsReadAndChecked() throws {
        #expect(try ConfigLoader.resolve(options: [:], environment: [:], file: [:]).socketCoalesceMilliseconds == 1)
        #expect(
            try ConfigLoader.resolve(options: [:], environment: ["BITTEN_SOCKET_COALESCE_MS": "0"], file: [:])
                .socketCoalesceMilliseconds == 0)
        #expect(
            try ConfigLoader.resolve(options: [:], environment: [:], file: ["BITTEN_SOCKET_COALESCE_MS": "2.5"])
                .socketCoalesceMilliseconds == 2.5)
        Self.expectRefused("BITTEN_SOCKET_COALESCE_MS", ["-1", "250", "soon", "nan"])
    }

    /// How far a trade shard applies ahead of its commits: 256 unless set, 1-100000, anything else refused.
    @Test func tradeApplyAheadIsReadAndChecked() throws {
        #expect(try ConfigLoader.resolve(options: [:], environment: [:], file: [:]).tradeApplyAhead == 256)
        #expect(
            try ConfigLoader.resolve(options: [:], environment: ["BITTEN_TRADE_APPLY_AHEAD": "64"], file: [:])
                .tradeApplyAhead == 64)
        #expect(
            try ConfigLoader.resolve(options: [:], environment: [:], file: ["BITTEN_TRADE_APPLY_AHEAD": "1024"])
                .tradeApplyAhead == 1024)
        Self.expectRefused("BITTEN_TRADE_APPLY_AHEAD", ["0", "-5", "100001", "lots", "2.5"])
    }

    @Test func ledgerRetentionIsReadAndChecked() throws {
        #expect(try ConfigLoader.resolve(options: [:], environment: [:], file: [:]).ledgerRetentionDays == 30)
        #expect(
            try ConfigLoader.resolve(options: [:], environment: ["BITTEN_LEDGER_RETENTION_DAYS": "0"], file: [:])
                .ledgerRetentionDays == 0)
        #expect(
            try ConfigLoader.resolve(options: [:], environment: [:], file: ["BITTEN_LEDGER_RETENTION_DAYS": "7.5"])
                .ledgerRetentionDays == 7.5)
        Self.expectRefused("BITTEN_LEDGER_RETENTION_DAYS", ["-1", "3651", "forever", "nan", "inf"])
    }

    @Test func badValuesNameTheSetting() throws {
        #expect {
            try ConfigLoader.resolve(options: [:], environment: ["BITTEN_HTTP_PORT": "99999"], file: [:])
        } throws: { error in
            let config = error as? ConfigError
            return config?.setting == "BITTEN_HTTP_PORT" && config?.description.contains("99999") == true
                && config?.description.contains("environment") == true
        }
        #expect {
            try ConfigLoader.resolve(options: ["BITTEN_REDIS_URL": "http://nope"], environment: [:], file: [:])
        } throws: { ($0 as? ConfigError)?.setting == "BITTEN_REDIS_URL" }
        // A cluster URL is read into the cluster setting (its mistakes named below).
        let cluster = try ConfigLoader.resolve(
            options: ["BITTEN_REDIS_URL": "redis-cluster://:pw@10.0.0.1:7000,10.0.0.2:7001"], environment: [:],
            file: [:])
        #expect(cluster.redisCluster?.seeds.map(\.port) == [7000, 7001] && cluster.redisCluster?.password == "pw")
        #expect(cluster.redisURL == nil && cluster.onCluster)
        let managed = try ConfigLoader.resolve(options: [:], environment: ["BITTEN_REDIS_CLUSTER": "yes"], file: [:])
        #expect(managed.managedCluster && managed.onCluster)
        // A URL of one server wins over the managed cluster.
        #expect(
            !(try ConfigLoader.resolve(
                options: ["BITTEN_REDIS_URL": "redis://h:1"], environment: ["BITTEN_REDIS_CLUSTER": "yes"], file: [:]))
                .onCluster)
        #expect {
            try ConfigLoader.resolve(options: [:], environment: ["BITTEN_REDIS_CLUSTER": "maybe"], file: [:])
        } throws: { ($0 as? ConfigError)?.setting == "BITTEN_REDIS_CLUSTER" }
        #expect {
            try ConfigLoader.resolve(
                options: ["BITTEN_REDIS_URL": "redis-cluster://10.0.0.1:7000,,"], environment: [:], file: [:])
        } throws: { ($0 as? ConfigError)?.description.contains("empty node") == true }
        #expect {
            try ConfigLoader.resolve(options: [:], environment: [:], file: ["BITTEN_HEARTBEAT_TIMEOUT": "-1"])
        } throws: { ($0 as? ConfigError)?.setting == "BITTEN_HEARTBEAT_TIMEOUT" }
        #expect {
            try ConfigLoader.fileLayer(["http_prot": "1"])
        } throws: { ($0 as? ConfigError)?.description.contains("unknown setting") == true }
        #expect {
            try ConfigLoader.resolve(options: [:], environment: ["BITTEN_HTTP_PORT": "5555"], file: [:])
        } throws: { ($0 as? ConfigError)?.setting == "ports" }
        #expect {
            try ConfigLoader.resolve(options: [:], environment: ["BITTEN_MALLOC_MMAP_THRESHOLD": "-5"], file: [:])
        } throws: { ($0 as? ConfigError)?.setting == "BITTEN_MALLOC_MMAP_THRESHOLD" }
    }

    @Test func mmapThresholdDefaultsToEightKilobytesAndZeroLeavesGlibcAlone() throws {
        #expect(try ConfigLoader.resolve(options: [:], environment: [:], file: [:]).mallocMmapThreshold == 8192)
        let off = try ConfigLoader.resolve(options: [:], environment: [:], file: ["BITTEN_MALLOC_MMAP_THRESHOLD": "0"])
        #expect(off.mallocMmapThreshold == 0)
        #expect(!MemoryTuning.apply(mmapThreshold: 0, logger: Logger(label: "test")))
    }

    @Test(arguments: [
        (["up", "--http-port", "99999"], "BITTEN_HTTP_PORT"),
        (["up", "--redis-url", "redis://host:notaport"], "BITTEN_REDIS_URL"),
    ])
    func theExecutablePrintsOneLineNamingTheSetting(_ arguments: [String], _ setting: String) async throws {
        let bitten = try BittenProcess(arguments: arguments)
        for _ in 0..<200 where bitten.isRunning { try await Task.sleep(for: .milliseconds(25)) }
        #expect(!bitten.isRunning)
        let errorLines = bitten.logTail().split(separator: "\n").filter {
            $0.contains("Error") || $0.contains("invalid")
        }
        #expect(errorLines.count == 1, "\(bitten.logTail())")
        #expect(errorLines.first?.contains(setting) == true, "\(bitten.logTail())")
    }
}

@Suite("HTTP exposure rules")
struct ExposureConfigTests {
    @Test func nonLoopbackNeedsAToken() throws {
        #expect {
            try ConfigLoader.resolve(options: [:], environment: ["BITTEN_HTTP_HOST": "0.0.0.0"], file: [:])
        } throws: { ($0 as? ConfigError)?.setting == "BITTEN_HTTP_HOST" && "\($0)".contains("BITTEN_API_TOKEN") }
        #expect {
            try ConfigLoader.resolve(options: [:], environment: ["BITTEN_BIND_HOST": "*"], file: [:])
        } throws: { ($0 as? ConfigError)?.setting == "BITTEN_HTTP_HOST" }
        let open = try ConfigLoader.resolve(
            options: [:], environment: ["BITTEN_HTTP_HOST": "0.0.0.0", "BITTEN_API_TOKEN": "t0ken"], file: [:])
        #expect(open.httpHost == "0.0.0.0")
        #expect {
            try ConfigLoader.resolve(options: [:], environment: ["BITTEN_PROTECT_READS": "true"], file: [:])
        } throws: { ($0 as? ConfigError)?.setting == "BITTEN_PROTECT_READS" }
    }
}
