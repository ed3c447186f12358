import BittenCore

/// Builds messages exactly as the EA (v2.05) writes them: flat compact JSON, money with two
/// decimals, MetaTrader timestamps.
enum EAMessages {
    static func money(_ value: Double) -> String { fixed(value, 2) }

    static func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int64((abs(value) * scale).rounded())
        let unit = Int64(scale)
        var fraction = String(scaled % unit)
        fraction = String(repeating: "0", count: max(0, digits - fraction.count)) + fraction
        let sign = value < 0 && scaled != 0 ? "-" : ""
        return digits == 0 ? "\(sign)\(scaled / unit)" : "\(sign)\(scaled / unit).\(fraction)"
    }

    static func hello(_ ea: SimulatedEA, broker: String, company: String, time: String) -> String {
        #"{"type":"HELLO","target_uuid":"\#(ea.uuid)","node_id":"\#(ea.nodeID)","account_login":"\#(ea.account)","broker":"\#(broker)","company":"\#(company)","terminal":"MetaTrader 5","currency":"\#(ea.currency)","balance":\#(money(ea.balance)),"equity":\#(money(ea.equity)),"leverage":500,"margin":\#(money(ea.margin)),"free_margin":\#(money(ea.equity - ea.margin)),"margin_level":\#(money(ea.marginLevel)),"symbols":\#(ea.marketWatch.count),"version":"2.05","timestamp":"\#(time)"}"#
    }

    static func dealerHeartbeat(_ ea: SimulatedEA, time: String) -> String {
        #"{"type":"HEARTBEAT","target_uuid":"\#(ea.uuid)","node_id":"\#(ea.nodeID)","currency":"\#(ea.currency)","balance":\#(money(ea.balance)),"equity":\#(money(ea.equity)),"leverage":500,"margin":\#(money(ea.margin)),"free_margin":\#(money(ea.equity - ea.margin)),"margin_level":\#(money(ea.marginLevel)),"ticks_processed":\#(ea.ticks),"timestamp":"\#(time)"}"#
    }

    /// `symbols`: the broker's names of the Market Watch list, the chart symbol first (the EA lists the first 20).
    static func handshake(_ ea: SimulatedEA, broker: String, company: String, symbols: [String], time: String) -> String
    {
        #"{"type":"handshake","deployment_mode":"universal_dealer","node_id":"\#(ea.nodeID)","user_uuid":"\#(ea.uuid)","account":\#(ea.account),"broker":"\#(company)","server":"\#(broker)","chart_symbol":"\#(symbols.first ?? "EURUSD")","monitored_symbols":\#(symbols.count),"symbol_list":"\#(symbols.prefix(20).joined(separator: ","))","currency":"\#(ea.currency)","balance":\#(money(ea.balance)),"equity":\#(money(ea.equity)),"leverage":500,"version":"2.05","socket_type":"DEALER","timestamp":"\#(time)"}"#
    }

    static func heartbeat(_ ea: SimulatedEA, time: String) -> String {
        #"{"type":"heartbeat","node_id":"\#(ea.nodeID)","user_uuid":"\#(ea.uuid)","account":\#(ea.account),"currency":"\#(ea.currency)","balance":\#(money(ea.balance)),"equity":\#(money(ea.equity)),"leverage":500,"free_margin":\#(money(ea.equity - ea.margin)),"margin_level":\#(money(ea.marginLevel)),"symbols_monitored":\#(ea.marketWatch.count),"ticks_processed":\#(ea.ticks),"socket_type":"DEALER","timestamp":"\#(time)"}"#
    }

    static func disconnect(_ ea: SimulatedEA, time: String) -> String {
        #"{"type":"DISCONNECT","deployment_mode":"universal_dealer","node_id":"\#(ea.nodeID)","user_uuid":"\#(ea.uuid)","symbols_monitored":\#(ea.marketWatch.count),"ticks_processed":\#(ea.ticks),"socket_type":"DEALER","timestamp":"\#(time)"}"#
    }

    static func tick(
        _ ea: SimulatedEA, symbol: String, bid: Double, ask: Double, spread: Double, digits: Int, time: String
    ) -> String {
        #"{"type":"TICK","node_id":"\#(ea.nodeID)","user_uuid":"\#(ea.uuid)","symbol":"\#(symbol)","bid":\#(fixed(bid, digits)),"ask":\#(fixed(ask, digits)),"spread":\#(fixed(spread, 1)),"volume":1,"timestamp":"\#(time)"}"#
    }

    static func ohlc(
        _ ea: SimulatedEA, symbol: String, barTime: Int, open: Double, high: Double, low: Double, close: Double,
        digits: Int, time: String
    ) -> String {
        #"{"type":"OHLC","node_id":"\#(ea.nodeID)","user_uuid":"\#(ea.uuid)","symbol":"\#(symbol)","timeframe":"M1","time":\#(barTime),"open":\#(fixed(open, digits)),"high":\#(fixed(high, digits)),"low":\#(fixed(low, digits)),"close":\#(fixed(close, digits)),"timestamp":"\#(time)"}"#
    }

    static func confirmation(
        _ ea: SimulatedEA, fireID: String, success: Bool, ticket: Int, price: Double, lot: Double,
        message: String, time: String
    ) -> String {
        #"{"type":"confirmation","command_type":"fire","fire_id":"\#(fireID)","node_id":"\#(ea.nodeID)","user_uuid":"\#(ea.uuid)","status":"\#(success ? "success" : "failed")","ticket":\#(ticket),"price":\#(fixed(price, 5)),"lot":\#(money(lot)),"message":"\#(message)","account":\#(ea.account),"currency":"\#(ea.currency)","balance":\#(money(ea.balance)),"equity":\#(money(ea.equity)),"free_margin":\#(money(ea.equity - ea.margin)),"margin_level":\#(money(ea.marginLevel)),"timestamp":"\#(time)"}"#
    }

    static func closeConfirmation(
        _ ea: SimulatedEA, commandType: String, ticket: Int, closePrice: Double, lot: Double,
        success: Bool, message: String, time: String
    ) -> String {
        #"{"type":"close_confirmation","command_type":"\#(commandType)","node_id":"\#(ea.nodeID)","user_uuid":"\#(ea.uuid)","status":"\#(success ? "success" : "failed")","ticket":\#(ticket),"close_price":\#(fixed(closePrice, 5)),"lot":\#(money(lot)),"message":"\#(message)","account":\#(ea.account),"currency":"\#(ea.currency)","balance":\#(money(ea.balance)),"equity":\#(money(ea.equity)),"free_margin":\#(money(ea.equity - ea.margin)),"margin_level":\#(money(ea.marginLevel)),"timestamp":"\#(time)"}"#
    }

    static func pong(_ ea: SimulatedEA, pingID: String, time: String) -> String {
        #"{"type":"pong","ping_id":"\#(pingID)","node_id":"\#(ea.nodeID)","user_uuid":"\#(ea.uuid)","timestamp":"\#(time)"}"#
    }
}
