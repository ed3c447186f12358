import Testing

@testable import BittenCore

/// How a close is valued, pure: by the market price, by the balance difference (which wins), from the
/// balance alone (the price follows), or not at all; the stored texts; the quotes a ledger entry carries.
@Suite("Close valuation (pure)")
struct CloseValuationTests {
    static let eurusd = CloseValuation.Position(isBuy: true, openPrice: 1.1, lot: 1, tickSize: 0.00001, tickValue: 1)

    /// Unrealized P&L, by hand: a BUY is worth its bid, a SELL its ask (the spread counts from the start).
    @Test(arguments: [
        // isBuy, open, lot, tick size, tick value, bid, ask, cents
        (true, 1.1, 1.0, 0.00001, 1.0, 1.10025, 1.10027, 2_500),
        (true, 1.1, 0.35, 0.00001, 1.0, 1.09990, 1.09992, -350),
        (false, 1.1, 1.0, 0.00001, 1.0, 1.10025, 1.10027, -2_700),
        (false, 1.1, 0.5, 0.00001, 1.0, 1.09900, 1.09902, 4_900),
        // XAUUSD: 0.01 tick worth 1 USD per lot; 0.1 lot from 2641.10, bid 2645.35.
        (true, 2641.10, 0.1, 0.01, 1.0, 2645.35, 2645.65, 4_250),
        (true, 1.1, 1.0, 0.00001, 1.0, 1.1, 1.10002, 0),
    ])
    func unrealizedAtTheQuote(_ c: (Bool, Double, Double, Double, Double, Double, Double, Int)) {
        let position = CloseValuation.Position(isBuy: c.0, openPrice: c.1, lot: c.2, tickSize: c.3, tickValue: c.4)
        #expect(position.unrealizedCents(bid: c.5, ask: c.6) == c.7)
        let open = OpenPosition(
            ticket: 1, fireID: "f", userUUID: "u", account: 1, symbol: "X", isBuy: c.0, lot: c.2, openPrice: c.1,
            stopLoss: 0, takeProfit: 0, openTime: 0, tickSize: c.3, tickValue: c.4)
        #expect(open.unrealizedCents(bid: c.5, ask: c.6) == c.7)
    }

    @Test func byPriceByBalanceAndNeither() {
        let byPrice = CloseValuation.settle(Self.eurusd, price: 1.10025, source: "market", byBalance: nil)
        #expect(byPrice.profitCents == 2_500 && byPrice.profitSource == "price" && byPrice.result == .win)
        #expect(
            byPrice.closePriceText == "1.10025" && byPrice.closePriceSource == "market" && byPrice.profitText == "25.00"
        )
        #expect(byPrice.byPriceCents == nil && byPrice.byBalanceCents == nil)

        var sell = Self.eurusd
        sell.isBuy = false
        let loss = CloseValuation.settle(sell, price: 1.1003, source: "ea", byBalance: nil)
        #expect(loss.profitCents == -3_000 && loss.result == .loss && loss.profitText == "-30.00")

        // The balance wins; both figures are kept.
        let both = CloseValuation.settle(Self.eurusd, price: 1.10025, source: "market", byBalance: 24.5)
        #expect(both.profitCents == 2_450 && both.profitSource == "balance" && both.closePriceText == "1.10025")
        #expect(both.byPriceCents == 2_500 && both.byBalanceCents == 2_450)

        // No quote: the close price follows from the balance.
        let fromBalance = CloseValuation.settle(Self.eurusd, price: nil, source: nil, byBalance: 12.34)
        #expect(fromBalance.closePriceText == "1.1001234" && fromBalance.closePriceSource == "balance")
        #expect(fromBalance.profitCents == 1_234 && fromBalance.profitSource == "balance")

        let nothing = CloseValuation.settle(Self.eurusd, price: nil, source: nil, byBalance: nil)
        #expect(nothing.result == .unvalued && !nothing.counted && nothing.profitCents == 0)
        #expect(
            nothing.closePriceText == "1.1" && nothing.closePriceSource == "unvalued" && nothing.profitSource == "none")

        let flat = CloseValuation.settle(Self.eurusd, price: 1.1, source: "market", byBalance: nil)
        #expect(flat.result == .breakeven && flat.counted)
        // XAUUSD, 0.35 lot, tick 0.01 worth 1: 3.5 a point.
        let gold = CloseValuation.Position(isBuy: false, openPrice: 2641.5, lot: 0.35, tickSize: 0.01, tickValue: 1)
        #expect(CloseValuation.settle(gold, price: 2631.5, source: "market", byBalance: nil).profitCents == 35_000)
    }

    @Test func storedTextsAndQuotes() {
        #expect(CloseValuation.priceText(2641) == "2641" && CloseValuation.priceText(0) == "0")
        #expect(CloseValuation.priceText(1.1) == "1.1" && CloseValuation.priceText(150.123456789) == "150.12345679")
        let quotes = "EURUSD:1.10025:1.10035:own;XAUUSD:2641.1:2641.5:any;GBPUSD:0:1.27:own"
        #expect(CloseValuation.marketPrice(in: quotes, symbol: "XAUUSD", isBuy: true)! == (2641.1, "any"))
        #expect(CloseValuation.marketPrice(in: quotes, symbol: "XAUUSD", isBuy: false)! == (2641.5, "any"))
        #expect(CloseValuation.marketPrice(in: quotes, symbol: "GBPUSD", isBuy: true) == nil, "a zero bid is no quote")
        #expect(CloseValuation.marketPrice(in: quotes, symbol: "USDJPY", isBuy: true) == nil)
        #expect(CloseValuation.marketPrice(in: "", symbol: "EURUSD", isBuy: true) == nil)
    }

    /// Prices, ids and dates are printed by hand on the trade path (once per close, per fire): the same text as
    /// Foundation's `String(format:)` gave, over prices of every size the brokers quote.
    @Test func handMadeTextsMatchTheFormatter() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let digits = Int.random(in: 0...5, using: &generator)
            let scale = [1.0, 10, 100, 1_000, 100_000, 1e7][Int.random(in: 0...5, using: &generator)]
            let price = (Double(Int.random(in: 0...9_999_999, using: &generator)) / scale).rounded(toPlaces: digits)
            var expected = String(format: "%.8f", price)
            while expected.hasSuffix("0") { expected.removeLast() }
            if expected.hasSuffix(".") { expected.removeLast() }
            #expect(CloseValuation.priceText(price) == expected, "\(price)")
            #expect(CloseValuation.priceText(-price) == (price == 0 ? "-0" : "-" + expected), "\(-price)")
        }
        for value in [0, 7, 42, 999_999, 1_000_000, 123_456_789] {
            #expect(PlainDecimal.padded(value, width: 6) == String(format: "%06d", value))
        }
        let time = MetaTraderTime(epochSeconds: 1_709_164_800)  // 2024-02-29
        #expect(time.dateText == "2024-02-29")
        #expect(MetaTraderTime(epochSeconds: 0).dateText == "1970-01-01")
    }

    @Test func centsPrintAsPercentPointTwoF() {
        #expect(CloseValuation.centsText(-1234) == "-12.34" && CloseValuation.centsText(5) == "0.05")
        #expect(
            CloseValuation.centsText(-5) == "-0.05" && CloseValuation.centsText(0) == "0.00"
                && CloseValuation.centsText(100) == "1.00")
        var random = SplitMix64(seed: 99)
        for _ in 0..<2_000 {
            let cents = Int(random.next() % 2_000_001) - 1_000_000
            #expect(CloseValuation.centsText(cents) == String(format: "%.2f", Double(cents) / 100), "\(cents)")
        }
    }
}

extension Double {
    fileprivate func rounded(toPlaces places: Int) -> Double {
        let scale = (0..<places).reduce(1.0) { value, _ in value * 10 }
        return (self * scale).rounded() / scale
    }
}
