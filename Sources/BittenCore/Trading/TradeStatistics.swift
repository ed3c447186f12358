import Foundation

/// Win-rate statistics of a set of closed trades (global, per symbol, per account, per user), kept in
/// integer cents so that sums are exact and any order of the same trades gives the same totals.
///
/// The rules, as pure Swift (the trade engine stores what they compute):
/// - a trade with profit > 0 is a win, < 0 a loss, exactly 0 breakeven;
/// - streaks: `currentStreak` is positive for wins in a row, negative for losses in a row; a breakeven
///   trade resets it to 0; `bestStreak` / `worstStreak` are the longest runs of wins / losses seen;
/// - win rate = wins ÷ total × 100 (breakeven trades count in the total);
/// - profit factor = gross profit ÷ gross loss; undefined (nil) while there is profit and no loss, 0 when
///   there is neither;
/// - averages: gross profit ÷ wins, gross loss ÷ losses (0 without any).
public struct TradeStatistics: Sendable, Equatable {
    /// Closed trades counted.
    public private(set) var total = 0
    /// Trades closed with a profit.
    public private(set) var wins = 0
    /// Trades closed with a loss.
    public private(set) var losses = 0
    /// Trades closed at zero.
    public private(set) var breakeven = 0
    /// The sum of the wins in cents.
    public private(set) var grossProfitCents = 0
    /// Positive: the sum of the losses' magnitudes.
    public private(set) var grossLossCents = 0
    /// The largest win in cents.
    public private(set) var largestWinCents = 0
    /// Positive: the magnitude of the largest loss.
    public private(set) var largestLossCents = 0
    /// The current run: positive for wins, negative for losses.
    public private(set) var currentStreak = 0
    /// The longest run of wins.
    public private(set) var bestStreak = 0
    /// The longest run of losses.
    public private(set) var worstStreak = 0
    /// When the last trade counted closed (as given with it).
    public private(set) var lastTradeAt: String?

    /// No trades yet.
    public init() {}

    /// Counts one closed trade.
    public mutating func record(profitCents cents: Int, at: String? = nil) {
        total += 1
        if cents > 0 {
            wins += 1
            grossProfitCents += cents
            largestWinCents = max(largestWinCents, cents)
            currentStreak = currentStreak > 0 ? currentStreak + 1 : 1
        } else if cents < 0 {
            losses += 1
            grossLossCents -= cents
            largestLossCents = max(largestLossCents, -cents)
            currentStreak = currentStreak < 0 ? currentStreak - 1 : -1
        } else {
            breakeven += 1
            currentStreak = 0
        }
        bestStreak = max(bestStreak, currentStreak)
        worstStreak = max(worstStreak, -currentStreak)
        if let at { lastTradeAt = at }
    }

    /// A profit in money rounded to whole cents, half away from zero.
    public static func cents(_ profit: Double) -> Int {
        profit >= 0 ? Int((profit * 100 + 0.5).rounded(.down)) : -Int((-profit * 100 + 0.5).rounded(.down))
    }

    /// Wins as a share of wins and losses, in percent.
    public var winRate: Double { total == 0 ? 0 : Double(wins) / Double(total) * 100 }
    /// Gross profit minus gross loss, in cents.
    public var netCents: Int { grossProfitCents - grossLossCents }
    /// Gross profit over gross loss; nil without a loss.
    public var profitFactor: Double? {
        if grossLossCents > 0 { return Double(grossProfitCents) / Double(grossLossCents) }
        return grossProfitCents == 0 ? 0 : nil
    }
    /// In cents, not rounded.
    public var averageWinCents: Double { wins == 0 ? 0 : Double(grossProfitCents) / Double(wins) }
    /// The average loss in cents (positive).
    public var averageLossCents: Double { losses == 0 ? 0 : Double(grossLossCents) / Double(losses) }

    /// The statistics hash as stored in Redis (`global_trade_stats`, `symbol_stats:SYMBOL`, …): the exact
    /// counters in cents, and the figures in money with two decimals (the profit factor with four, empty
    /// while undefined), as `TradeStats` reads them.
    public var redisFields: [(String, String)] {
        func money(_ cents: Double) -> String { CloseValuation.centsText(Int((cents).rounded())) }
        var fields: [(String, String)] = [
            ("total", String(total)), ("wins", String(wins)), ("losses", String(losses)),
            ("breakeven", String(breakeven)),
            ("gross_profit_cents", String(grossProfitCents)), ("gross_loss_cents", String(grossLossCents)),
            ("largest_win_cents", String(largestWinCents)), ("largest_loss_cents", String(largestLossCents)),
            ("current_streak", String(currentStreak)), ("best_streak", String(bestStreak)),
            ("worst_streak", String(worstStreak)),
            ("win_rate", String(format: "%.2f", winRate)), ("gross_profit", money(Double(grossProfitCents))),
            ("gross_loss", money(Double(grossLossCents))), ("net", money(Double(netCents))),
            ("profit_factor", profitFactor.map { grossLossCents > 0 ? String(format: "%.4f", $0) : "0" } ?? ""),
            ("average_win", money(averageWinCents)), ("average_loss", money(averageLossCents)),
            ("largest_win", money(Double(largestWinCents))), ("largest_loss", money(Double(largestLossCents))),
        ]
        if let lastTradeAt { fields.append(("last_trade_at", lastTradeAt)) }
        return fields
    }

    /// Reads the exact counters back from a stored hash (missing ones are 0); nil when a counter is not
    /// an integer.
    public init?(redisHash hash: [String: String]) {
        func count(_ key: String) -> Int? { hash[key].map { Int($0) } ?? 0 }
        guard let total = count("total"), let wins = count("wins"), let losses = count("losses"),
            let breakeven = count("breakeven"), let gross = count("gross_profit_cents"),
            let loss = count("gross_loss_cents"),
            let largestWin = count("largest_win_cents"), let largestLoss = count("largest_loss_cents"),
            let current = count("current_streak"), let best = count("best_streak"), let worst = count("worst_streak")
        else { return nil }
        (self.total, self.wins, self.losses, self.breakeven) = (total, wins, losses, breakeven)
        (grossProfitCents, grossLossCents, largestWinCents, largestLossCents) = (gross, loss, largestWin, largestLoss)
        (currentStreak, bestStreak, worstStreak) = (current, best, worst)
        lastTradeAt = hash["last_trade_at"]
    }

    /// Statistics kept per shard, read as one: counts and sums add, the largest win and loss are the largest
    /// of any shard. Streaks are the order of trades, which no shard sees whole: the best and worst streak
    /// are the longest of any shard (the true figure is at least that), and the current streak is that of the
    /// shard with the latest trade. A record kept in one shard (a user's, and an account's, which belongs to
    /// one user) is exact.
    public static func merged(_ parts: [TradeStatistics]) -> TradeStatistics {
        var total = TradeStatistics()
        var latest = -Double.infinity
        for part in parts where part.total > 0 {
            total.total += part.total
            total.wins += part.wins
            total.losses += part.losses
            total.breakeven += part.breakeven
            total.grossProfitCents += part.grossProfitCents
            total.grossLossCents += part.grossLossCents
            total.largestWinCents = max(total.largestWinCents, part.largestWinCents)
            total.largestLossCents = max(total.largestLossCents, part.largestLossCents)
            total.bestStreak = max(total.bestStreak, part.bestStreak)
            total.worstStreak = max(total.worstStreak, part.worstStreak)
            let at = part.lastTradeAt.flatMap(Double.init) ?? -Double.infinity
            if at >= latest {
                latest = at
                total.currentStreak = part.currentStreak
                total.lastTradeAt = part.lastTradeAt
            }
        }
        return total
    }
}
