// libFuzzer entry points over every decoder. Built by scripts/fuzz.sh with
// `swiftc -sanitize=fuzzer,address` together with BittenCore's sources (and RedisURL for the
// configuration's Redis URL); FUZZ_TARGET picks the decoder at compile time.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    #if FUZZ_EA_MESSAGE
    // Every channel, and no channel.
    if case .tick(let tick)? = try? EAMessage.decode(bytes) {
        // A broker's symbol name always maps to a canonical name that is a valid symbol.
        let canonical = SymbolCanon(known: InstrumentTable.standard.instruments.keys).canonical(tick.symbol)
        precondition(Symbol.isValid(canonical), "bad canonical \(canonical)")
    }
    for channel in EAChannel.allCases { _ = try? EAMessage.decode(bytes, channel: channel) }
    #elseif FUZZ_COMMAND
    if let command = try? EACommand.decode(bytes) {
        // What decodes must encode back within the EA's limits, or be refused cleanly.
        _ = try? CommandEncoder.encode(command)
    }
    #elseif FUZZ_SIGNAL
    _ = try? Signal.decode(bytes, now: 1_795_611_600, defaultTTL: 7200)
    #elseif FUZZ_CITADEL_QUERY
    if case .protection(let query)? = try? CitadelRequest.decode(bytes) {
        // A decoded query must score without trapping, on an engine with and without data.
        var engine = CitadelEngine()
        _ = engine.assess(query, at: 1_795_611_600)
        _ = engine.addTick(symbol: query.symbol, bid: query.entry, ask: query.entry * 1.0001, volume: 1, at: 1_795_611_600)
        let report = engine.assess(query, at: 1_795_611_601)
        precondition((1...10).contains(report.score), "score out of range: \(report.score)")
        _ = report.json.serialized
    }
    #elseif FUZZ_HTTP_JSON
    // HTTP bodies go through the same parser and field reader as the wire.
    if let reader = try? FieldReader(parsing: bytes, maxBytes: 64 * 1024) {
        _ = try? reader.string("uuid")
        _ = try? reader.optionalDouble("risk_override")
        _ = try? reader.uuid("user_uuid")
        _ = JSONValue.object(reader.object).serialized
    }
    #elseif FUZZ_CONFIG
    // Configuration values: the Redis URL parser and the MetaTrader time parser.
    let text = String(decoding: bytes, as: UTF8.self)
    _ = try? RedisURL(parsing: text)
    _ = MetaTraderTime(text)
    _ = PlainDecimal.format(Double(text) ?? 0, maxFractionDigits: 8)
    #else
    #error("define one FUZZ_… target")
    #endif
    return 0
}
