import Foundation

/// The Telegram front's settings (`BITTEN_TELEGRAM_*`).
public struct TelegramConfig: Sendable, Equatable {
    /// The bot's token from @BotFather (`BITTEN_TELEGRAM_TOKEN`); nil: no bot.
    public var token: String?
    /// The Bot API's base URL (`BITTEN_TELEGRAM_API`; a local stand-in in tests).
    public var apiBase = "https://api.telegram.org"
    /// Chat ids of operators (`BITTEN_TELEGRAM_OPERATORS`, comma-separated).
    public var operators: [Int64] = []
    /// Where signals are announced (`BITTEN_TELEGRAM_CHANNEL`: `@name` or a chat id); nil: each subscribed chat.
    public var channel: String?
    /// Bitten's HTTP API as the bot calls it (`BITTEN_TELEGRAM_BITTEN_URL`); nil: this machine's HTTP port.
    public var bittenURL: String?

    /// No bot.
    public init() {}
}

extension ConfigLoader {
    /// The `BITTEN_TELEGRAM_*` settings, checked.
    static func applyTelegram(
        _ lookup: (String) -> (String, Source)?, to config: inout BittenConfig
    ) throws(ConfigError) {
        func url(_ setting: String) throws(ConfigError) -> String? {
            guard let (text, source) = lookup(setting) else { return nil }
            guard text.hasPrefix("http://") || text.hasPrefix("https://"), URL(string: text)?.host != nil else {
                throw ConfigError(
                    setting: setting, message: "'\(text)' from the \(source.rawValue) is not an http(s) URL")
            }
            return text
        }
        if let (text, source) = lookup("BITTEN_TELEGRAM_TOKEN") {
            // "123456:ABC-def_…": the bot's id, a colon, the secret.
            let parts = text.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty, parts[0].allSatisfy(\.isNumber), parts[1].count >= 10,
                parts[1].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
            else {
                throw ConfigError(
                    setting: "BITTEN_TELEGRAM_TOKEN",
                    message: "the value from the \(source.rawValue) is not a bot token (digits:secret, from @BotFather)"
                )
            }
            config.telegram.token = text
        }
        if let base = try url("BITTEN_TELEGRAM_API") { config.telegram.apiBase = base }
        if let bitten = try url("BITTEN_TELEGRAM_BITTEN_URL") { config.telegram.bittenURL = bitten }
        if let (text, source) = lookup("BITTEN_TELEGRAM_OPERATORS") {
            var ids: [Int64] = []
            for item in text.split(separator: ",") {
                guard let id = Int64(String(item).trimmingSpaces) else {
                    throw ConfigError(
                        setting: "BITTEN_TELEGRAM_OPERATORS",
                        message: "'\(item)' from the \(source.rawValue) is not a chat id (an integer)")
                }
                ids.append(id)
            }
            config.telegram.operators = ids
        }
        if let (text, source) = lookup("BITTEN_TELEGRAM_CHANNEL") {
            let value = text.trimmingSpaces
            guard Int64(value) != nil || (value.hasPrefix("@") && value.count > 1 && value.count <= 64) else {
                throw ConfigError(
                    setting: "BITTEN_TELEGRAM_CHANNEL",
                    message: "'\(text)' from the \(source.rawValue) is not a chat id or an @channel name")
            }
            config.telegram.channel = value
        }
    }
}
