import BittenCore
import Foundation
import Logging
import Metrics
import Redis
import ServiceLifecycle
import Synchronization

/// Closes: one ticket, or every open position of a user (`close_all`, which the EA v2.05 answers once,
/// with ticket 0).
extension FireDesk {
    /// An open position the engine holds (in any shard owned here).
    func openPosition(_ ticket: Int) -> OpenPosition? {
        engine.readAll { shard in shard.book.positions.positions[ticket].map { [$0] } ?? [] }.first
    }

    /// Asks the EA holding `ticket` to close it.
    public func close(ticket: Int, routing: Bool = true) async throws(FireRefusal) -> FireRecord {
        await engine.waitUntilAllTried()
        guard let position = openPosition(ticket) else {
            // Open in a shard another process owns: closed there.
            if routing, let router,
                let (shard, uuid) = await router.locate(ticket: ticket, owned: Set(engine.ownedShardIndices)),
                let records = try await router.route(.close, shard: shard, userUUID: uuid, ticket: ticket),
                let record = records.first
            {
                return record
            }
            throw refuse(.positionNotFound, "no open position \(ticket)")
        }
        let records = try await requestClose(
            [position],
            command: .closeTicket(
                targetUUID: position.userUUID, ticket: ticket, timestamp: MetaTraderTime(epochSeconds: Int(now()))))
        guard let record = records.first else { throw refuse(.positionNotFound, "position \(ticket) closed meanwhile") }
        return record
    }

    /// Asks a user's EA to close every position. `forced`: an operator's close-all that goes even while trading
    /// is halted (`bitten halt --close-all`).
    public func closeAll(userUUID: String, routing: Bool = true, forced: Bool = false) async throws(FireRefusal)
        -> [FireRecord]
    {
        guard UserID.isValid(userUUID) else { throw refuse(.badRequest, "'\(userUUID)' is not a valid user UUID") }
        await engine.waitUntilTried(userUUID)
        if routing, let router, !engine.owns(userUUID),
            let records = try await router.route(.closeAll, shard: engine.shard(of: userUUID), userUUID: userUUID)
        {
            return records
        }
        let (known, positions) = try await guarded {
            try engine.read(userUUID) { ($0.users[userUUID] != nil, $0.book.positions.open(of: userUUID)) }
        }
        guard known else { throw refuse(.userNotFound, "no user \(userUUID)") }
        guard !positions.isEmpty else { return [] }
        return try await requestClose(
            positions,
            command: .closeAll(
                targetUUID: userUUID, timestamp: MetaTraderTime(epochSeconds: Int(now()))), forced: forced)
    }

    func requestClose(_ positions: [OpenPosition], command: EACommand, forced: Bool = false) async throws(FireRefusal)
        -> [FireRecord]
    {
        let uuid = command.targetUUID
        if !forced {
            // Closes go while trading is close-only, not while it is halted (the system's or the user's).
            let at = now()
            if let refusal = control?.refusal(fire: false, at: at) { throw refuse(refusal.code, refusal.message) }
            let user = try? engine.read(uuid) { $0.users[uuid]?.trading }
            if let user, let refusal = user.closeRefusal(at: at, subject: "user \(uuid)") {
                throw refuse(refusal.code, refusal.message)
            }
        }
        guard let channel, registry?.node(uuid)?.online ?? true, await channel.reachable(uuid) else {
            throw refuse(.eaOffline, "the EA of \(uuid) is not online")
        }
        let at = now()
        let deadline = at + settings.confirmationTimeout
        let tickets = positions.map(\.ticket)
        let commandType = command.typeName
        let done = try await guarded {
            try await engine.perform(uuid) { shard in
                tickets.map { shard.requestClose(ticket: $0, command: commandType, at: at, deadline: deadline) }
            }
        }
        let reserved = zip(tickets, done.value).filter { $0.1 == "ok" }.map(\.0)
        if let notStored = done.notStored {
            try? engine.apply(uuid) { shard in
                for ticket in reserved {
                    shard.closeSendFailed(ticket: ticket, reason: "not sent: \(notStored.message)")
                }
            }
            throw refuse(
                .storeUnavailable, "the close request was not stored, so it was not sent: \(notStored.message)")
        }
        var states: [Int: String] = [:]
        if !reserved.isEmpty {
            if let refusal = control?.enter(fire: false, forced: forced) {
                try? engine.apply(uuid) { shard in
                    for ticket in reserved { shard.closeSendFailed(ticket: ticket, reason: refusal.description) }
                }
                throw refuse(refusal.code, refusal.message)
            }
            defer { control?.leave() }
            do {
                try await channel.send(command)
                count("close_sent")
                let sentAt = now()
                if let recorder {
                    for position in positions where reserved.contains(position.ticket) {
                        traceSent(
                            recorder, position.fireID, command, at: sentAt, to: uuid, step: "close_sent",
                            extra: ["ticket": String(position.ticket), "forced": forced ? "1" : "0"])
                    }
                }
                try? engine.apply(uuid) { shard in
                    for ticket in reserved { shard.closeSent(ticket: ticket, at: sentAt, deadline: deadline) }
                }
                for ticket in reserved { states[ticket] = "sent" }
            } catch {
                try? engine.apply(uuid) { shard in
                    for ticket in reserved { shard.closeSendFailed(ticket: ticket, reason: "send failed: \(error)") }
                }
                throw FireRefusal(error.code == .notConnected ? .eaOffline : .sendFailed, error.message)
            }
        }
        var records: [FireRecord] = []
        for position in positions {
            if let state = states[position.ticket] {
                let record: [String: String] = [
                    "state": state, "kind": "close", "ticket": String(position.ticket), "user_uuid": uuid,
                    "symbol": position.symbol,
                    "command": commandType, "created_at": TradeStore.number(at),
                    "deadline": TradeStore.number(deadline),
                ]
                if let built = FireRecord(hash: record) { records.append(built) }
            } else if let record = try await guarded({ try await store.closeRequest(position.ticket, user: uuid) }) {
                // Under way already: the request as stored.
                records.append(record)
            }
        }
        return records
    }
}
