import Foundation

/// A trade command in flight: a fire from its reservation to its answer.
public struct FireInFlight: Sendable, Equatable {
    /// The id.
    public var id: String
    /// The user's UUID (the EA's `target_uuid`).
    public var userUUID: String
    /// The signal's id.
    public var signalID: String
    /// The canonical symbol (`EURUSD`), or as the message named it.
    public var symbol: String
    /// True for a BUY.
    public var isBuy: Bool
    /// The stop loss price (0: none).
    public var stopLoss: Double
    /// The take profit price (0: none).
    public var takeProfit: Double
    /// The volume in lots.
    public var lot: Double
    /// The smallest price step.
    public var tickSize: Double
    /// The value of one tick for one lot, in the account currency.
    public var tickValue: Double
    /// Where it stands in its lifecycle.
    public var state: FireState
    /// The time by which an answer is due (pending/sent).
    public var deadline: Double?
    /// The symbol as the user's broker names it ("" when it is the canonical one).
    public var brokerSymbol = ""
    /// The signal's entry price (what the risk limits value the stop distance from; 0 when unknown).
    public var entry = 0.0

    /// A fire in flight.
    public init(
        id: String, userUUID: String, signalID: String, symbol: String, isBuy: Bool, stopLoss: Double,
        takeProfit: Double,
        lot: Double, tickSize: Double, tickValue: Double, state: FireState = .pending, deadline: Double? = nil
    ) {
        self.id = id
        self.userUUID = userUUID
        self.signalID = signalID
        self.symbol = symbol
        self.isBuy = isBuy
        self.stopLoss = stopLoss
        self.takeProfit = takeProfit
        self.lot = lot
        self.tickSize = tickSize
        self.tickValue = tickValue
        self.state = state
        self.deadline = deadline
    }
}

/// What a fire request, move or answer came to.
public enum FireOutcome: Sendable, Equatable {
    case reserved(String)
    /// This user fired this signal already: that fire.
    case duplicate(String)
    /// Every slot of the user's tier is taken (how many are used).
    case noSlot(used: Int)
    case moved(from: FireState)
    /// Already in that state.
    case same
    /// Not a move `FireState` allows (from the state it is in).
    case invalid(FireState)
    case unknownFire
    /// The answer names another user than the fire's.
    case wrongUser
    /// Filled; `stopDropped` / `targetDropped`: the EA zeroed a stop or target on the wrong side of its fill.
    case filled(stopDropped: Bool, targetDropped: Bool)
    case rejected
}

/// The fires and positions of a set of users, with the rules that move them — pure (`PositionBook` for
/// what happens once a position is open). A fire holds one of its user's slots from its reservation while
/// pending, sent and filled, until its position closes; a rejected or timed-out fire gives it back, and a
/// timed-out fire that is filled after all (a late answer) takes it again. A fire is never sent twice: a
/// timeout is final unless the EA's answer comes.
///
/// Each `TradeShard` holds one; the trade engine is its only writer.
public struct TradeBook: Sendable {
    /// Fires in flight, by id.
    public private(set) var fires: [String: FireInFlight] = [:]
    /// Per user: the fires holding a slot.
    public private(set) var slots: [String: Set<String>] = [:]
    /// Per signal and user: the fire made for it (a repeat returns it).
    private var fired: [String: String] = [:]
    /// The open positions.
    public private(set) var positions = PositionBook()
    /// The last fire number handed out (ids count up from it).
    public private(set) var sequence = 0
    /// Between the date and the number in a fire id: a shard's `"03-"`, so that shards never hand out the same id.
    public let idInfix: String

    /// An empty book; fire ids carry `idInfix` and continue from `sequence`.
    public init(idInfix: String = "", sequence: Int = 0) {
        self.idInfix = idInfix
        self.sequence = sequence
    }

    /// The fire made for `signalID` by `user`, if any.
    public func firedBy(signalID: String, user: String) -> String? { fired[signalID + "|" + user] }

    /// Puts back a fire as it was stored (loading a shard): it holds a slot in the states that do.
    public mutating func restore(_ fire: FireInFlight) {
        fires[fire.id] = fire
        fired[fire.signalID + "|" + fire.userUUID] = fire.id
        if fire.state == .pending || fire.state == .sent { slots[fire.userUUID, default: []].insert(fire.id) }
    }

    /// Puts back an idempotency marker whose fire is settled and no longer kept.
    public mutating func restoreMarker(signalID: String, user: String, fireID: String) {
        fired[signalID + "|" + user] = fireID
    }

    /// Puts back an open position (loading a shard): its fire's slot stays taken until it closes.
    public mutating func restore(_ position: OpenPosition) {
        positions.restore(position)
        slots[position.userUUID, default: []].insert(position.fireID)
    }

    /// Positions' side of loading: statistics and balances.
    public mutating func restorePositions(_ body: (inout PositionBook) -> Void) { body(&positions) }

    /// Drops a settled or timed-out fire from memory (its record stays stored); a late answer to it is then
    /// an unknown fire.
    public mutating func forget(_ id: String) {
        guard let fire = fires[id], fire.state.isFinal || fire.state == .timedOut else { return }
        fires[id] = nil
    }

    /// Drops the idempotency marker of (signal, user), so that user may fire the signal again.
    public mutating func forgetMarker(signalID: String, user: String) { fired[signalID + "|" + user] = nil }

    /// Drops every marker of a signal (it expired: no fire can be made for it any more).
    public mutating func forgetMarkers(signalID: String) {
        let prefix = signalID + "|"
        fired = fired.filter { !$0.key.hasPrefix(prefix) }
    }

    /// Slots in use by a user.
    public func slotsUsed(_ user: String) -> Int { slots[user]?.count ?? 0 }

    /// Reserves a fire for `user` on `signal` when one of the tier's `slots` is free; ids are
    /// `F-{date}-{sequence}`.
    public mutating func reserve(_ fire: FireInFlight, slots allowed: Int, date: String) -> FireOutcome {
        let marker = fire.signalID + "|" + fire.userUUID
        if let existing = fired[marker] { return .duplicate(existing) }
        let used = slotsUsed(fire.userUUID)
        guard used < allowed else { return .noSlot(used: used) }
        sequence += 1
        var reserved = fire
        reserved.id = "F-\(date)-\(idInfix)" + PlainDecimal.padded(sequence, width: 6)
        reserved.state = .pending
        fires[reserved.id] = reserved
        fired[marker] = reserved.id
        slots[fire.userUUID, default: []].insert(reserved.id)
        return .reserved(reserved.id)
    }

    /// Moves a fire (sent, timed out, rejected by a failed send); rejected and timed out give the slot back.
    public mutating func move(_ id: String, to target: FireState, deadline: Double? = nil) -> FireOutcome {
        guard var fire = fires[id] else { return .unknownFire }
        if fire.state == target { return .same }
        guard fire.state.canMove(to: target) else { return .invalid(fire.state) }
        let from = fire.state
        fire.state = target
        fire.deadline = deadline
        fires[id] = fire
        if target == .rejected || target == .timedOut { slots[fire.userUUID]?.remove(id) }
        return .moved(from: from)
    }

    /// The EA's answer to a fire. A success opens the position (a stop or target on the wrong side of the
    /// fill price is recorded as dropped, 0: the EA removed it), a failure rejects the fire; the answer's
    /// balance is the account's latest. A repeated answer is a duplicate and changes nothing.
    public mutating func answered(
        _ id: String, success: Bool, userUUID: String, ticket: Int, price: Double, lot: Double,
        account: Int, balance: Double?, at: Double
    ) -> (FireOutcome, [PositionAction]) {
        guard var fire = fires[id] else { return (.unknownFire, []) }
        guard fire.userUUID == userUUID else { return (.wrongUser, []) }
        if fire.state == .filled || fire.state == .rejected { return (.duplicate(id), []) }
        let target: FireState = success ? .filled : .rejected
        guard fire.state.canMove(to: target) else { return (.invalid(fire.state), []) }
        let was = fire.state
        fire.state = target
        fire.deadline = nil
        fires[id] = fire
        guard success else {
            slots[userUUID]?.remove(id)
            return (.rejected, positions.reported(balance, of: account))
        }
        let stopDropped = fire.stopLoss > 0 && (fire.isBuy ? fire.stopLoss >= price : fire.stopLoss <= price)
        let targetDropped = fire.takeProfit > 0 && (fire.isBuy ? fire.takeProfit <= price : fire.takeProfit >= price)
        if was == .timedOut { slots[userUUID, default: []].insert(id) }
        let position = OpenPosition(
            ticket: ticket, fireID: id, userUUID: userUUID, account: account, symbol: fire.symbol,
            isBuy: fire.isBuy, lot: lot, openPrice: price, stopLoss: stopDropped ? 0 : fire.stopLoss,
            takeProfit: targetDropped ? 0 : fire.takeProfit, openTime: at, tickSize: fire.tickSize,
            tickValue: fire.tickValue)
        return (
            .filled(stopDropped: stopDropped, targetDropped: targetDropped),
            positions.opened(position, balance: balance)
        )
    }

    /// Applies a close event to the positions (see `PositionBook`); each closed position gives its fire's slot back.
    public mutating func close(_ event: (inout PositionBook) -> [PositionAction]) -> [PositionAction] {
        let actions = event(&positions)
        for case .closed(let trade) in actions { slots[trade.position.userUUID]?.remove(trade.position.fireID) }
        return actions
    }
}
