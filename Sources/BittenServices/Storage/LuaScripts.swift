import Foundation
import Redis

/// The Lua scripts Bitten runs on Redis. Each is a resource file, `Sources/BittenServices/Storage/Scripts/NAME.lua`,
/// whose header names its keys and arguments; each has a contract test against real Redis.
public enum LuaScripts {
    /// A batch of confirmations into a shard's ledger, once per writer sequence (`ConfirmationService`).
    public static let appendConfirmations = load("append_confirmations")
    /// Takes or renews a trade shard's lease (`ShardStore.acquire`).
    public static let acquireLease = load("acquire_lease")
    /// Gives a trade shard's lease up (`ShardStore.release`).
    public static let releaseLease = load("release_lease")
    /// A trade shard's commit on a Redis Cluster, fenced by its lease (`ShardStore`).
    public static let commitFenced = load("commit_fenced")
    /// Stores a new signal, never overwriting one (`TradeStore.saveSignal`).
    public static let saveSignal = load("save_signal")
    /// Sets the system's trading state with the next version (`TradingControlStore.set`).
    public static let setTradingControl = load("set_trading_control")
    /// Holds lots against a service-wide concentration limit (`Concentration`).
    public static let holdLots = load("hold_lots")
    /// A shard's exact lots into a concentration total, clearing the holds it now counts (`Concentration`).
    public static let resyncLots = load("resync_lots")

    /// The script in `Scripts/NAME.lua` of this module's resources.
    static func load(_ name: String) -> RedisScript {
        guard let url = Bundle.module.url(forResource: name, withExtension: "lua", subdirectory: "Scripts"),
            let source = try? String(contentsOf: url, encoding: .utf8)
        else {
            preconditionFailure("the Lua script \(name).lua is missing from the BittenServices resources")
        }
        return RedisScript(source)
    }
}
