import BittenCore
import BittenServices
import Foundation

/// What a chat asked for, parsed and checked before anything else sees it: a command with arguments of the right
/// shape, or the reason it was refused (said to the user in one line, and counted).
public enum BotCommand: Sendable, Equatable {
    /// `/start CODE`: link this chat to the user the code was made for (`/start` alone: the help).
    case start(code: String?)
    /// `/help`.
    case help
    /// `/fire SIGNAL_ID`.
    case fire(signalID: String)
    /// `/positions`.
    case positions
    /// `/close TICKET`.
    case close(ticket: Int)
    /// `/closeall` (answered with a button to confirm).
    case closeAll
    /// `/stats`.
    case stats
    /// `/status`.
    case status
    /// `/subscribe`, `/unsubscribe`: signal announcements to this chat (when no channel is configured).
    case subscribe(Bool)
    /// Operators: `/halt [reason]`, `/resume`, `/health`.
    case halt(reason: String?)
    /// Operators: lift a halt or close-only.
    case resume
    /// Operators: the system's health.
    case health

    /// The most characters of a message the bot reads.
    public static let maxText = 512

    /// Why a message is not a command the bot takes.
    public struct Refusal: Error, Sendable, Equatable {
        /// A short code, the counter's label (`unknown_command`, `bad_argument`, `too_long`, `not_a_command`).
        public var code: String
        /// The one line the user reads.
        public var message: String
    }

    /// Parses a message's text: `/command[@bot] arguments`.
    public static func parse(_ text: String) -> Result<BotCommand, Refusal> {
        guard text.count <= maxText else {
            return .failure(Refusal(code: "too_long", message: "That message is too long for a command."))
        }
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init)
        guard let first = words.first, first.hasPrefix("/") else {
            return .failure(Refusal(code: "not_a_command", message: "Send a command, such as /help."))
        }
        // "/fire@BittenBot" in a group names the bot.
        let name = String(first.dropFirst().split(separator: "@", maxSplits: 1).first ?? "").lowercased()
        let arguments = Array(words.dropFirst())
        func none(_ command: BotCommand) -> Result<BotCommand, Refusal> {
            arguments.isEmpty ? .success(command) : .failure(bad("/\(name) takes no argument."))
        }
        switch name {
        case "start":
            guard arguments.count <= 1 else { return .failure(bad("Usage: /start CODE")) }
            guard let code = arguments.first else { return .success(.start(code: nil)) }
            guard LinkCode.isValid(code) else {
                return .failure(bad("'\(code.prefix(32))' is not a link code (\(LinkCode.length) letters and digits)."))
            }
            return .success(.start(code: code.uppercased()))
        case "help": return none(.help)
        case "fire":
            guard arguments.count == 1 else { return .failure(bad("Usage: /fire SIGNAL_ID")) }
            guard SignalID.isValid(arguments[0]) else {
                return .failure(bad("'\(arguments[0].prefix(64))' is not a signal id."))
            }
            return .success(.fire(signalID: arguments[0]))
        case "positions": return none(.positions)
        case "close":
            guard arguments.count == 1 else { return .failure(bad("Usage: /close TICKET")) }
            guard let ticket = Int(arguments[0]), ticket > 0 else {
                return .failure(bad("'\(arguments[0].prefix(32))' is not a ticket number."))
            }
            return .success(.close(ticket: ticket))
        case "closeall": return none(.closeAll)
        case "stats": return none(.stats)
        case "status": return none(.status)
        case "subscribe": return none(.subscribe(true))
        case "unsubscribe": return none(.subscribe(false))
        case "halt":
            let reason = arguments.joined(separator: " ")
            return .success(.halt(reason: reason.isEmpty ? nil : String(reason.prefix(200))))
        case "resume": return none(.resume)
        case "health": return none(.health)
        default:
            return .failure(
                Refusal(
                    code: "unknown_command", message: "Unknown command /\(name.prefix(32)). Send /help for the list."))
        }
    }

    static func bad(_ message: String) -> Refusal { Refusal(code: "bad_argument", message: message) }

    /// Whether only an operator's chat may send it.
    public var isOperatorOnly: Bool {
        switch self {
        case .halt, .resume, .health: true
        default: false
        }
    }

    /// The help text (operators see their commands too).
    public static func help(operator: Bool) -> String {
        var lines = [
            "/fire SIGNAL_ID: fire a signal for your account",
            "/positions: your open positions",
            "/close TICKET: close one of them",
            "/closeall: close all of them (asks first)",
            "/stats: your trading statistics",
            "/status: your EA, trading state and today's limits",
            "/subscribe, /unsubscribe: signal announcements here",
        ]
        if `operator` { lines += ["/halt [reason]: halt all trading", "/resume: trade again", "/health: the system"] }
        return lines.joined(separator: "\n")
    }
}

/// A button's data: fire a signal (`f:SIGNAL_ID`) or confirm a close-all (`ca:NONCE`). Anything else is refused.
public enum BotButtonData: Sendable, Equatable {
    case fire(signalID: String)
    case confirmCloseAll(nonce: String)

    /// The data as the button carries it.
    public var text: String {
        switch self {
        case .fire(let id): "f:" + id
        case .confirmCloseAll(let nonce): "ca:" + nonce
        }
    }

    /// Parses a button's data; nil when it is none of the bot's (a forged or an old button).
    public static func parse(_ data: String) -> BotButtonData? {
        guard data.utf8.count <= 64 else { return nil }
        if data.hasPrefix("f:") {
            let id = String(data.dropFirst(2))
            return SignalID.isValid(id) ? .fire(signalID: id) : nil
        }
        if data.hasPrefix("ca:") {
            let nonce = String(data.dropFirst(3))
            return nonce.count == 16 && nonce.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) })
                ? .confirmCloseAll(nonce: nonce) : nil
        }
        return nil
    }
}
