import BittenServices
import Logging
import Redis
import ServiceLifecycle

extension TelegramService {
    /// The composition root's factory: the Telegram front when `BITTEN_TELEGRAM_TOKEN` is set (none otherwise). It
    /// calls Bitten's HTTP API (`BITTEN_TELEGRAM_BITTEN_URL`, or this machine's HTTP port) with the API token.
    public static func make(_ config: BittenConfig, _ parts: SystemParts) throws -> [any Service] {
        guard let token = config.telegram.token else { return [] }
        let logger = Logger(label: "bitten.\(name)")
        let host = ["0.0.0.0", "::", ""].contains(config.httpHost) ? "127.0.0.1" : config.httpHost
        let bitten = BittenAPIClient(
            base: config.telegram.bittenURL ?? "http://\(host.contains(":") ? "[\(host)]" : host):\(config.httpPort)",
            token: config.apiToken)
        var settings = Settings()
        settings.operators = Set(config.telegram.operators)
        settings.channel = config.telegram.channel
        var redisURL: RedisURL?
        if case .single(let url) = parts.backend {
            redisURL = url
        } else {
            logger.warning(
                "Telegram notifications of fills and closes are not served on a Redis Cluster yet: bitten:events is read from one server"
            )
        }
        return [
            TelegramService(
                api: BotAPI(base: config.telegram.apiBase, token: token), bitten: bitten,
                store: TelegramStore(redis: parts.redis), signals: parts.tradeStore(config), redisURL: redisURL,
                settings: settings, board: parts.board, logger: logger)
        ]
    }
}
