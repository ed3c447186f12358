/// The EA-facing ZeroMQ channels, each accepting its own message types.
public enum EAChannel: String, Sendable, CaseIterable {
    /// 5555 ROUTER: HELLO, HEARTBEAT.
    case command
    /// 5556 PULL: handshake, heartbeat, DISCONNECT, TICK, OHLC.
    case market
    /// 5558 PULL: confirmation, close_confirmation, pong.
    case confirm

    /// Whether `type` is accepted on this channel (no set built per message).
    public func accepts(_ type: String) -> Bool {
        switch self {
        case .command: type == "HELLO" || type == "HEARTBEAT"
        case .market:
            type == "TICK" || type == "OHLC" || type == "heartbeat" || type == "handshake" || type == "DISCONNECT"
        case .confirm: type == "confirmation" || type == "close_confirmation" || type == "pong"
        }
    }

    /// The `type` values accepted on this channel.
    public var acceptedTypes: Set<String> {
        switch self {
        case .command: ["HELLO", "HEARTBEAT"]
        case .market: ["handshake", "heartbeat", "DISCONNECT", "TICK", "OHLC"]
        case .confirm: ["confirmation", "close_confirmation", "pong"]
        }
    }
}

/// Every message an EA sends, decoded strictly.
public enum EAMessage: Sendable, Equatable {
    case hello(Hello)
    case heartbeat(DealerHeartbeat)
    case handshake(Handshake)
    case telemetryHeartbeat(TelemetryHeartbeat)
    case disconnect(Disconnect)
    case tick(Tick)
    case ohlc(OHLCBar)
    case confirmation(Confirmation)
    case closeConfirmation(CloseConfirmation)
    case pong(Pong)

    /// Decodes one EA message. With `channel`, a type that belongs to another channel is refused.
    public static func decode(_ bytes: [UInt8], channel: EAChannel? = nil) throws(WireError) -> EAMessage {
        try decodeNoting(bytes, channel: channel).message
    }

    /// Decodes one EA message and says whether some of its text was in the EA's ANSI code page
    /// (Windows-1252, not UTF-8), so the caller can count it.
    public static func decodeNoting(_ bytes: [UInt8], channel: EAChannel? = nil) throws(WireError)
        -> (message: EAMessage, legacyText: Bool)
    {
        let reader = try FieldReader(parsing: bytes, legacyText: true)
        return (try decode(reader, channel: channel), reader.fields.legacyTextStrings > 0)
    }

    private static func decode(_ reader: FieldReader, channel: EAChannel?) throws(WireError) -> EAMessage {
        let type = try reader.string("type", maxLength: 32)
        if let channel, !channel.accepts(type) {
            let known = EAChannel.allCases.contains { $0.accepts(type) }
            throw WireError(
                .unknownType, field: "type",
                known ? "'\(type)' is not accepted on the \(channel.rawValue) channel" : "unknown type '\(type)'")
        }
        switch type {
        case "HELLO": return .hello(try Hello(reading: reader))
        case "HEARTBEAT": return .heartbeat(try DealerHeartbeat(reading: reader))
        case "handshake": return .handshake(try Handshake(reading: reader))
        case "heartbeat": return .telemetryHeartbeat(try TelemetryHeartbeat(reading: reader))
        case "DISCONNECT": return .disconnect(try Disconnect(reading: reader))
        case "TICK": return .tick(try Tick(reading: reader))
        case "OHLC": return .ohlc(try OHLCBar(reading: reader))
        case "confirmation": return .confirmation(try Confirmation(reading: reader))
        case "close_confirmation": return .closeConfirmation(try CloseConfirmation(reading: reader))
        case "pong": return .pong(try Pong(reading: reader))
        default: throw WireError(.unknownType, field: "type", "unknown type '\(type)'")
        }
    }

    /// The user UUID the message is about.
    public var userUUID: String {
        switch self {
        case .hello(let m): m.targetUUID
        case .heartbeat(let m): m.targetUUID
        case .handshake(let m): m.userUUID
        case .telemetryHeartbeat(let m): m.userUUID
        case .disconnect(let m): m.userUUID
        case .tick(let m): m.userUUID
        case .ohlc(let m): m.userUUID
        case .confirmation(let m): m.userUUID
        case .closeConfirmation(let m): m.userUUID
        case .pong(let m): m.userUUID
        }
    }

    /// The wire `type` value.
    public var typeName: String {
        switch self {
        case .hello: "HELLO"
        case .heartbeat: "HEARTBEAT"
        case .handshake: "handshake"
        case .telemetryHeartbeat: "heartbeat"
        case .disconnect: "DISCONNECT"
        case .tick: "TICK"
        case .ohlc: "OHLC"
        case .confirmation: "confirmation"
        case .closeConfirmation: "close_confirmation"
        case .pong: "pong"
        }
    }
}
