import ArgumentParser
import BittenCore
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Calls the running system's HTTP API (with the API token when one is configured).
struct APIClient {
    let base: String
    let token: String?

    init(_ options: ConfigOptions) throws {
        let config = try resolveOrExit(options)
        let host = config.httpHost == "0.0.0.0" ? "127.0.0.1" : config.httpHost
        base = "http://\(host):\(config.httpPort)"
        token = config.apiToken
    }

    /// Sends the request, prints the JSON answer, and exits non-zero on a 4xx/5xx.
    func call(_ method: String, _ path: String, body: [String: Any]? = nil) async throws {
        let (status, data) = try await send(method, path, body: body)
        if let object = try? JSONSerialization.jsonObject(with: data),
            let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        {
            print(String(decoding: pretty, as: UTF8.self))
        } else {
            print(String(decoding: data, as: UTF8.self))
        }
        if status >= 400 { throw ExitCode(1) }
    }

    /// Sends the request; the status and the body (exits when bitten cannot be reached).
    func send(_ method: String, _ path: String, body: [String: Any]? = nil) async throws -> (Int, Data) {
        guard let url = URL(string: base + path) else { throw ValidationError("bad path \(path)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = 10
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            print("bitten is not reachable at \(base): \(error.localizedDescription)")
            throw ExitCode(1)
        }
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }
}

extension Tier: ExpressibleByArgument {
    /// A tier from its name, any case.
    public init?(argument: String) { self.init(name: argument) }
}

/// `bitten user add|set|show|list|link`.
struct User: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage users (UUID, tier, risk override) of a running bitten.",
        subcommands: [Add.self, Set.self, Show.self, List.self, Link.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user.")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "The user's UUID (the EA's target_uuid).") var uuid: String
        @Option(help: "Tier: \(Tier.allCases.map(\.rawValue).joined(separator: ", ")).") var tier: Tier = .recruit
        @Option(help: "Display name.") var name: String?
        @Option(help: "Risk percent per trade instead of the base risk (capped by the tier).") var risk: Double?

        func run() async throws {
            var body: [String: Any] = ["uuid": uuid, "tier": tier.rawValue]
            if let name { body["display_name"] = name }
            if let risk { body["risk_override"] = risk }
            try await APIClient(options).call("POST", "/users", body: body)
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a user's tier, name, risk override or own risk limits.")
        @OptionGroup var options: ConfigOptions
        @Argument var uuid: String
        @Option var tier: Tier?
        @Option var name: String?
        @Option(help: "Risk percent per trade; 0 removes the override.") var risk: Double?
        @Option(help: "Daily loss limit, % of the day's starting balance (0: the tier's default).") var dailyLoss:
            Double?
        @Option(help: "Drawdown limit, % from the equity peak (0: the tier's default).") var drawdown: Double?
        @Option(help: "Open risk limit, % of the balance at the stops (0: the tier's default).") var openRisk: Double?
        @Option(help: "Net lots per currency (0: the tier's default).") var exposureLots: Double?
        @Option(help: "Trades per day (0: the tier's default).") var tradesPerDay: Int?
        @Option(help: "Losing trades in a row before a cooldown (with --cooldown-minutes; 0: the tier's default).")
        var lossStreak: Int?
        @Option(help: "Minutes of cooldown after the losing streak (0: the tier's default).") var cooldownMinutes:
            Double?

        func run() async throws {
            var body: [String: Any] = [:]
            if let tier { body["tier"] = tier.rawValue }
            if let name { body["display_name"] = name }
            if let risk { body["risk_override"] = risk }
            var limits: [String: Any] = [:]
            if let dailyLoss { limits["daily_loss"] = dailyLoss }
            if let drawdown { limits["drawdown"] = drawdown }
            if let openRisk { limits["open_risk"] = openRisk }
            if let exposureLots { limits["exposure_lots"] = exposureLots }
            if let tradesPerDay { limits["trades_per_day"] = tradesPerDay }
            if let lossStreak { limits["loss_streak"] = lossStreak }
            if let cooldownMinutes { limits["cooldown_minutes"] = cooldownMinutes }
            if !limits.isEmpty { body["limits"] = limits }
            try await APIClient(options).call("PUT", "/users/\(uuid)", body: body)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one user with slots in use.")
        @OptionGroup var options: ConfigOptions
        @Argument var uuid: String
        func run() async throws { try await APIClient(options).call("GET", "/users/\(uuid)") }
    }

    struct Link: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Print a one-time code that links the user's Telegram chat (the user sends /start CODE to the bot).")
        @OptionGroup var options: ConfigOptions
        @Argument var uuid: String

        func run() async throws {
            let client = try APIClient(options)
            let (status, data) = try await client.send("POST", "/users/\(uuid)/telegram-link")
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            guard status == 201, let code = object["code"] as? String else {
                print(String(decoding: data, as: UTF8.self))
                throw ExitCode(1)
            }
            let minutes = (object["expires_in"] as? Int ?? 900) / 60
            print(code)
            print("The user sends /start \(code) to the bot within \(minutes) minutes; the code works once.")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users, by UUID.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "How many (1-1000).") var limit = 1000
        @Option(help: "How many to skip.") var offset = 0
        func run() async throws { try await APIClient(options).call("GET", "/users?limit=\(limit)&offset=\(offset)") }
    }
}

/// `bitten fire SIGNAL_ID --user UUID`.
struct Fire: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fire a signal for one user's EA (idempotent per signal and user).")
    @OptionGroup var options: ConfigOptions
    @Argument(help: "The signal id.") var signalID: String
    @Option(help: "The user's UUID.") var user: String

    func run() async throws {
        try await APIClient(options).call("POST", "/fire/\(signalID)", body: ["user_uuid": user])
    }
}

/// `bitten node show|approve|dismiss|unpin UUID`: an EA node's pin and the operator's decisions on it.
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract:
            "An EA node's pin (account, server, machine): show it, approve or dismiss a pending account switch, clear it."
    )

    enum Action: String, ExpressibleByArgument, CaseIterable {
        /// The node with its pin, pending switch and last refused message.
        case show
        /// Take the pending account switch: the pin moves to the new account.
        case approve
        /// Dismiss the pending account switch (an intruder): the pin stays.
        case dismiss
        /// Clear the pin: the next HELLO pins the node again.
        case unpin
    }

    @OptionGroup var options: ConfigOptions
    @Argument(
        help: "show | approve (take the pending switch) | dismiss (keep the pin) | unpin (the next HELLO pins again)")
    var action: Action
    @Argument(help: "The user's UUID.") var uuid: String

    func run() async throws {
        let client = try APIClient(options)
        if action == .show { return try await client.call("GET", "/nodes/\(uuid)") }
        try await client.call("POST", "/nodes/\(uuid)/\(action.rawValue)")
    }
}
