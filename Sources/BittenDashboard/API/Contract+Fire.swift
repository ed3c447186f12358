import BittenCore
import BittenServices

extension Contract {
    /// A fire record as the API's `Fire`, field by field: the fire path answers every request with one, and the
    /// trip through JSON that `convert` makes cost the server about 7 % of its CPU at 1 000 fires/s. The compiler
    /// checks the fields; a kind outside the document's enum is refused as `convert` would refuse it.
    /// `APIHandlerTests` checks this against `convert` for every state and kind.
    static func fire(_ record: FireRecord) throws -> Components.Schemas.Fire {
        guard let kind = Components.Schemas.Fire.KindPayload(rawValue: record.kind) else {
            throw Violation(type: "Fire", reason: "kind: \(record.kind) is not one of fire, close")
        }
        guard let state = Components.Schemas.Fire.StatePayload(rawValue: record.state.rawValue) else {
            throw Violation(type: "Fire", reason: "state: \(record.state.rawValue) is not in the document")
        }
        return Components.Schemas.Fire(
            fireId: record.fireID, signalId: record.signalID, userUuid: record.userUUID, symbol: record.symbol,
            direction: record.direction, entry: record.entry, sl: record.sl, tp: record.tp,
            eaMessage: record.eaMessage, reason: record.reason, late: record.late, state: state, kind: kind,
            lot: record.lot, riskPercent: record.riskPercent, riskAmount: record.riskAmount, tier: record.tier,
            citadelMultiplier: record.citadelMultiplier, ticket: record.ticket, fillPrice: record.fillPrice,
            createdAt: record.createdAt, sentAt: record.sentAt, confirmedAt: record.confirmedAt,
            deadline: record.deadline, duplicate: record.duplicate, brokerSymbol: record.brokerSymbol,
            tickValue: record.tickValue, conversion: record.conversion, slDropped: record.slDropped,
            tpDropped: record.tpDropped)
    }

    /// Fire records as the API's `Fire`s, in order.
    static func fires(_ records: [FireRecord]) throws -> [Components.Schemas.Fire] { try records.map(fire) }
}
