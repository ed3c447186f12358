import Foundation

/// One shard of the trade state: its users, fires in flight, slots, close requests, open positions and
/// statistics, with every rule that moves them — pure. The shard's owner is the only writer of its
/// state: it feeds the events in (a fire requested, sent, answered, a close requested, answered, the
/// market crossing a stop, a deadline passing), takes the resulting `TradeChange`s with `takeChanges()`
/// and stores them in one step per commit. Answers come as `FireAnswer`/`CloseAnswer` exactly as the EA
/// v2.05 sends them (close price 0, `close_all` answered once with ticket 0, stops never reported).
///
/// Outcomes of answers are the ledger's words: `ok`, `ok:sl_dropped`, `ok:tp_dropped`,
/// `ok:sl_tp_dropped`, `ok:N` (positions a `close_all` closed), `duplicate`, `unknown_fire`,
/// `unknown_position`, `wrong_user`, `invalid`, `rejected`, `ignored`.
public struct TradeShard: Sendable {
    /// The shard's number.
    public let index: Int
    /// Fires in flight, open positions and statistics.
    public internal(set) var book: TradeBook
    /// The shard's users.
    public internal(set) var users: [String: ShardUser] = [:]
    /// Close requests in flight, by ticket.
    public internal(set) var closes: [Int: CloseRequest] = [:]
    var changes: [TradeChange] = []
    /// How many of `changes` `writeEvents()` has looked through.
    var eventsWritten = 0
    var touched: Set<String> = []
    /// Settled fires and closed tickets in the order they settled, dropped from memory by `prune`.
    var settled: [(id: String?, ticket: Int?, at: Double)] = []
    var settledHead = 0
    /// Fires by the second their answer is due (entries may be stale: checked when the second comes).
    var due: [Int: [String]] = [:]
    /// Per signal: when it expires and the users who fired it (their markers go once it is long expired).
    var markers: [String: (expiresAt: Double, users: [String])] = [:]

    /// An empty shard; `sequence` continues its fire ids.
    public init(index: Int, sequence: Int = 0) {
        self.index = index
        book = TradeBook(idInfix: String(format: "%02d-", index), sequence: sequence)
    }

    /// The changes since the last call, in order; slot counts of the users they touched come last.
    public mutating func takeChanges() -> [TradeChange] {
        for user in touched.sorted() { changes.append(.slots(user: user, used: book.slotsUsed(user))) }
        touched.removeAll(keepingCapacity: true)
        eventsWritten = 0
        defer { changes.removeAll(keepingCapacity: true) }
        return changes
    }

    /// Writes the events among the changes not yet taken as their JSON objects (`eventText`), each once: the same
    /// text the store would write for them, made now by the caller instead of by the commit.
    public mutating func writeEvents() {
        while eventsWritten < changes.count {
            if case .event(let name, let fields) = changes[eventsWritten] {
                changes[eventsWritten] = .eventText(JSONValue.serialize(fields, setting: "event", to: name))
            }
            eventsWritten += 1
        }
    }

    /// Whether changes wait to be taken.
    public var hasChanges: Bool { !changes.isEmpty || !touched.isEmpty }

    /// Records a line on an operator's list with the next commit.
    public mutating func note(_ value: String, on list: String) { changes.append(.note(list: list, value: value)) }

    // MARK: users

    /// Saves a user (its fields as stored). Its trading state and risk figures stay as they were: `setTrading`
    /// changes the state, the trades the figures.
    public mutating func save(_ user: ShardUser, fields: [String]) {
        var user = user
        user.trading = users[user.uuid]?.trading ?? .active
        user.risk = users[user.uuid]?.risk ?? RiskDay()
        users[user.uuid] = user
        changes.append(.user(user, fields: fields))
    }

    // MARK: fires

    /// Reserves a fire for the user, sized by the variant of the user's tier and risk override as the shard
    /// holds them now (never stale). `fire` carries everything but its id, state and lot.
    /// A user who is close-only or halted at `at` (as the shard holds the user now) is refused.
    public mutating func reserve(
        _ fire: FireInFlight, variants: [SizingChoice], signalExpiresAt: Double, date: String,
        fields: [String], at: Double? = nil, risk: RiskContext? = nil
    ) -> ShardReservation {
        guard let user = users[fire.userUUID] else { return .noUser }
        if let existing = book.firedBy(signalID: fire.signalID, user: fire.userUUID) {
            return .duplicate(fireID: existing)
        }
        if let refusal = user.trading.fireRefusal(at: at ?? -.infinity, subject: "user \(user.uuid)") {
            return .refused(refusal)
        }
        guard let variant = variants.first(where: { $0.key == user.variantKey }) else {
            return .resize(tier: user.tier, override: user.riskOverride)
        }
        if let error = variant.error { return .sizingFailed(error) }
        var sized = fire
        sized.lot = variant.lot
        var figures: RiskDay?
        if let risk, let at {
            let checked = check(user, sized, risk, at: at)
            if let refusal = checked.refusal { return .refused(refusal) }
            figures = checked.figures
        }
        switch book.reserve(sized, slots: variant.slots, date: date) {
        case .reserved(let id):
            if var figures {
                figures.trades += 1
                users[user.uuid]?.risk = figures
                changes.append(.userRisk(uuid: user.uuid, figures))
            }
            guard let created = book.fires[id] else { return .noUser }
            if let deadline = created.deadline { schedule(id, deadline) }
            changes.append(.fireCreated(created, signalExpiresAt: signalExpiresAt, fields: variant.fields + fields))
            touched.insert(fire.userUUID)
            markers[fire.signalID, default: (signalExpiresAt, [])].users.append(fire.userUUID)
            return .reserved(fireID: id, key: variant.key)
        case .duplicate(let id): return .duplicate(fireID: id)
        case .noSlot(let used): return .noSlot(used: used, key: variant.key)
        default: return .noUser
        }
    }

    /// The fire's command went out: it waits for the answer until `deadline`.
    @discardableResult
    public mutating func sent(_ id: String, at: Double, deadline: Double, fields: [String] = []) -> FireOutcome {
        let outcome = book.move(id, to: .sent, deadline: deadline)
        if case .moved = outcome {
            schedule(id, deadline)
            changes.append(.fireMoved(id: id, state: .sent, fields: ["deadline", Self.number(deadline)] + fields))
        }
        return outcome
    }

    /// The command could not be handed to the EA: rejected, its slot and marker freed (the user may fire again).
    @discardableResult
    public mutating func sendFailed(_ id: String, reason: String, at: Double) -> FireOutcome {
        let outcome = book.move(id, to: .rejected)
        guard case .moved = outcome, let fire = book.fires[id] else { return outcome }
        changes.append(.fireMoved(id: id, state: .rejected, fields: ["reason", reason]))
        changes.append(.event("fire.rejected", eventFields(fire)))
        book.forgetMarker(signalID: fire.signalID, user: fire.userUUID)
        changes.append(.markerForgotten(signalID: fire.signalID, user: fire.userUUID))
        touched.insert(fire.userUUID)
        settle(id, at: at)
        return outcome
    }

    /// The EA's answer to a fire (exactly once per ledger entry: the owner replays from its checkpoint).
    public mutating func apply(_ answer: FireAnswer, streamID: String) -> String {
        let was = book.fires[answer.fireID]?.state
        let (outcome, actions) = book.answered(
            answer.fireID, success: answer.success, userUUID: answer.userUUID, ticket: answer.ticket,
            price: answer.price, lot: answer.lot, account: answer.account,
            balance: answer.balance, at: answer.at)
        switch outcome {
        case .unknownFire:
            changes.append(
                .orphan(
                    streamID: streamID,
                    fields: [
                        "stream_id": streamID, "fire_id": answer.fireID, "user_uuid": answer.userUUID,
                        "ticket": String(answer.ticket),
                        "status": answer.success ? "success" : "failed", "at": Self.number(answer.at),
                    ]))
            return "unknown_fire"
        case .wrongUser: return "wrong_user"
        case .duplicate: return "duplicate"
        case .invalid: return "invalid"
        default: break
        }
        guard let fire = book.fires[answer.fireID] else { return "invalid" }
        var fields = [
            "confirmed_at", Self.number(answer.at), "ea_message", answer.message, "account", String(answer.account),
            "late", was == .timedOut ? "1" : "0",
        ]
        var result = "ok"
        if case .filled(let stop, let target) = outcome {
            fields += [
                "ticket", String(answer.ticket), "fill_price", Self.number(answer.price), "fill_lot",
                Self.number(answer.lot),
            ]
            if stop || target {
                fields += ["sl_dropped", stop ? "1" : "0", "tp_dropped", target ? "1" : "0"]
                result = stop && target ? "ok:sl_tp_dropped" : stop ? "ok:sl_dropped" : "ok:tp_dropped"
            }
            if let position = book.positions.positions[answer.ticket] {
                let dropped =
                    stop || target
                    ? DroppedStops(
                        stopLoss: stop, takeProfit: target, requestedStopLoss: fire.stopLoss,
                        requestedTakeProfit: fire.takeProfit)
                    : nil
                changes.append(.fireMoved(id: fire.id, state: .filled, fields: fields))
                changes.append(
                    .positionOpened(
                        position, signalID: fire.signalID, brokerSymbol: fire.brokerSymbol, dropped: dropped))
            }
        } else {
            changes.append(.fireMoved(id: fire.id, state: .rejected, fields: fields))
        }
        record(actions)
        var event = eventFields(fire)
        for i in stride(from: 0, to: fields.count - 1, by: 2) { event[fields[i]] = fields[i + 1] }
        changes.append(.event("fire." + fire.state.rawValue, event))
        touched.insert(fire.userUUID)
        settle(fire.id, at: answer.at)
        return result
    }

    // MARK: closes

    /// Opens a close request for an open position unless one is under way:
    /// `ok`, `duplicate:<state>` or `not_open`.
    public mutating func requestClose(ticket: Int, command: String, at: Double, deadline: Double) -> String {
        guard let position = book.positions.positions[ticket] else { return "not_open" }
        if let request = closes[ticket], request.state == .pending || request.state == .sent {
            return "duplicate:" + request.state.rawValue
        }
        let request = CloseRequest(
            ticket: ticket, userUUID: position.userUUID, command: command, state: .pending, deadline: deadline)
        closes[ticket] = request
        changes.append(
            .closeRequest(
                request,
                fields: [
                    "ticket", String(ticket), "user_uuid", position.userUUID, "symbol", position.symbol, "command",
                    command,
                    "created_at", Self.number(at), "deadline", Self.number(deadline),
                ]))
        return "ok"
    }

    /// The close command went out.
    public mutating func closeSent(ticket: Int, at: Double, deadline: Double) {
        moveClose(ticket, to: .sent, deadline: deadline, fields: ["sent_at", Self.number(at)])
    }

    /// The close command could not be handed to the EA.
    public mutating func closeSendFailed(ticket: Int, reason: String) {
        moveClose(ticket, to: .rejected, deadline: nil, fields: ["reason", reason])
    }

    mutating func moveClose(_ ticket: Int, to state: FireState, deadline: Double?, fields: [String]) {
        guard var request = closes[ticket], request.state != state, request.state.canMove(to: state) else { return }
        request.state = state
        request.deadline = deadline
        closes[ticket] = state.isFinal ? nil : request
        changes.append(.closeRequest(request, fields: fields))
    }

    /// The EA's answer to a close command.
    public mutating func apply(_ answer: CloseAnswer, streamID: String) -> String {
        guard answer.success else {
            if closes[answer.ticket] != nil {
                moveClose(
                    answer.ticket, to: .rejected, deadline: nil,
                    fields: ["ea_message", answer.message, "confirmed_at", Self.number(answer.at)])
            }
            changes.append(
                .event(
                    "close.rejected",
                    [
                        "ticket": String(answer.ticket), "user_uuid": answer.userUUID,
                        "ea_message": answer.message,
                    ]))
            // The broker closed it already (a stop or target hit, or by hand), unseen: closed at the market.
            if answer.message == "Position not found", answer.ticket != 0,
                book.positions.positions[answer.ticket]?.userUUID == answer.userUUID
            {
                closed(
                    book.close {
                        $0.notFoundAtBroker(
                            ticket: answer.ticket, userUUID: answer.userUUID, quotes: answer.quotes,
                            at: answer.at)
                    }, at: answer.at)
                return "ok"
            }
            return "rejected"
        }
        if answer.ticket == 0 {
            // close_all: ONE answer with ticket 0 for every position of that account.
            guard answer.commandType == "close_all" else { return "ignored" }
            let open = book.positions.open(of: answer.userUUID).filter { $0.account == answer.account }
            let actions = book.close {
                $0.closeAllAnswered(
                    userUUID: answer.userUUID, account: answer.account, balance: answer.balance,
                    quotes: answer.quotes, at: answer.at)
            }
            closed(actions, at: answer.at)
            return open.isEmpty ? "ignored" : "ok:\(open.count)"
        }
        guard let position = book.positions.positions[answer.ticket] else {
            // Closed before (a repeat) or never known.
            if settledTickets.contains(answer.ticket) { return "duplicate" }
            changes.append(
                .orphan(
                    streamID: streamID,
                    fields: [
                        "stream_id": streamID, "ticket": String(answer.ticket), "user_uuid": answer.userUUID,
                        "status": "success", "kind": "close",
                    ]))
            return "unknown_position"
        }
        guard position.userUUID == answer.userUUID else { return "wrong_user" }
        closed(
            book.close {
                $0.closeAnswered(
                    ticket: answer.ticket, userUUID: answer.userUUID, closePrice: answer.closePrice,
                    balance: answer.balance, quotes: answer.quotes, at: answer.at)
            }, at: answer.at)
        return "ok"
    }

    /// The market crossed a position's stop loss or take profit (`stop_loss` / `take_profit`).
    public mutating func crossed(ticket: Int, level: Double, reason: String, at: Double) -> String {
        guard book.positions.positions[ticket] != nil else {
            return settledTickets.contains(ticket) ? "duplicate" : "unknown_position"
        }
        closed(book.close { $0.crossed(ticket: ticket, level: level, reason: reason, at: at) }, at: at)
        return "ok"
    }

    /// Tickets closed while this shard was in memory (a repeated close answer is a duplicate).
    var settledTickets: Set<Int> = []

    private mutating func closed(_ actions: [PositionAction], at: Double) {
        for case .closed(let trade) in actions {
            countInStreak(trade, at: at)
            settledTickets.insert(trade.position.ticket)
            settled.append((nil, trade.position.ticket, at))
            touched.insert(trade.position.userUUID)
            if closes[trade.position.ticket] != nil {
                moveClose(
                    trade.position.ticket, to: .filled, deadline: nil,
                    fields: [
                        "confirmed_at", Self.number(at), "close_price", trade.valuation.closePriceText, "profit",
                        trade.valuation.profitText,
                        "close_price_source", trade.valuation.closePriceSource,
                    ])
            }
        }
        record(actions)
        for case .closed(let trade) in actions {
            changes.append(.event("position.closed", Self.tradeFields(trade)))
        }
    }

    private mutating func record(_ actions: [PositionAction]) {
        for action in actions {
            switch action {
            case .closed(let trade): changes.append(.positionClosed(trade))
            case .statistics(let key, let statistics): changes.append(.statistics(key: key, statistics))
            case .balance(let account, let balance, let closes):
                changes.append(.balance(account: account, balance: balance, closesSince: closes))
            }
        }
    }

    mutating func settle(_ id: String, at: Double) { settled.append((id, nil, at)) }

    mutating func schedule(_ id: String, _ deadline: Double) {
        guard deadline.isFinite else { return }
        due[Int(deadline.rounded(.down)), default: []].append(id)
    }
}
