import ArgumentParser
import Foundation

/// Who and why, for every trading-state command.
struct ControlOptions: ParsableArguments {
    @Option(help: "One user's state instead of the whole system's.") var user: String?
    @Option(help: "Why (shown on the dashboard's banner).") var reason: String?
    @Option(help: "Who (default: $USER@host).") var by: String?

    func body(closeAll: Bool = false) -> [String: Any] {
        var body: [String: Any] = ["by": by ?? Self.operatorName]
        if let reason { body["reason"] = reason }
        if let user { body["user_uuid"] = user }
        if closeAll { body["close_all"] = true }
        return body
    }

    static var operatorName: String {
        let user = ProcessInfo.processInfo.environment["USER"] ?? "operator"
        return String("\(user)@\(ProcessInfo.processInfo.hostName)".prefix(64))
    }
}

/// `bitten halt [--close-all] [--reason TEXT] [--user UUID]`.
struct Halt: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Halt trading: nothing is sent, fires are refused (trading_halted). Kept in Redis: a restart does not lift it. Answers once every running trade process enforces it."
    )
    @OptionGroup var options: ConfigOptions
    @OptionGroup var control: ControlOptions
    @Flag(help: "Close every open position as well (sent once, even though halted).") var closeAll = false

    func run() async throws {
        try await APIClient(options).call("POST", "/control/halt", body: control.body(closeAll: closeAll))
    }
}

/// `bitten close-only [--close-all] [--reason TEXT] [--user UUID]`.
struct CloseOnly: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "close-only",
        abstract: "Close-only: closes and close-all go through, new fires are refused (close_only).")
    @OptionGroup var options: ConfigOptions
    @OptionGroup var control: ControlOptions
    @Flag(help: "Close every open position as well.") var closeAll = false

    func run() async throws {
        try await APIClient(options).call("POST", "/control/close-only", body: control.body(closeAll: closeAll))
    }
}

/// `bitten resume [--user UUID]`.
struct Resume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Trading as usual again (also ends a risk limit's close-only of a user).")
    @OptionGroup var options: ConfigOptions
    @OptionGroup var control: ControlOptions

    func run() async throws { try await APIClient(options).call("POST", "/control/resume", body: control.body()) }
}

/// `bitten control`: the trading state, its acknowledgements and the users not trading normally.
struct ControlShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "control", abstract: "Show the trading state, who set it and which trade processes enforce it.")
    @OptionGroup var options: ConfigOptions

    func run() async throws { try await APIClient(options).call("GET", "/control") }
}
