/// The shard's clock: commands whose answer is overdue, and what no longer decides anything.
extension TradeShard {
    /// Commands whose answer is overdue at `at` become `timed_out` (a fire gives its slot back; a late
    /// answer still fills it). Returns the fire ids and close tickets that timed out.
    public mutating func expire(at: Double, reason: String) -> (fires: [String], closes: [Int]) {
        var fires: [String] = []
        let second = Int(at.rounded(.down))
        for bucket in due.keys.filter({ $0 <= second }) {
            var later: [String] = []
            for id in due[bucket] ?? [] {
                guard let fire = book.fires[id], fire.state == .pending || fire.state == .sent,
                    let deadline = fire.deadline
                else { continue }
                if deadline <= at {
                    fires.append(id)
                } else if Int(deadline.rounded(.down)) == bucket {
                    later.append(id)  // due later in this second
                }
            }
            due[bucket] = later.isEmpty ? nil : later
        }
        fires = Array(Set(fires)).sorted()
        let fields = ["timed_out_at", Self.number(at), "reason", reason]
        for id in fires {
            guard case .moved = book.move(id, to: .timedOut), let fire = book.fires[id] else { continue }
            changes.append(.fireMoved(id: id, state: .timedOut, fields: fields))
            var event = eventFields(fire)
            event["timed_out_at"] = Self.number(at)
            changes.append(.event("fire.timed_out", event))
            touched.insert(fire.userUUID)
            settle(id, at: at)
        }
        let overdue = closes.values.filter { $0.deadline.map { $0 <= at } ?? false }.map(\.ticket).sorted()
        for ticket in overdue { moveClose(ticket, to: .timedOut, deadline: nil, fields: fields) }
        return (fires, overdue)
    }

    /// Forgets what no longer decides anything: fires settled before `settledBefore` (their records stay
    /// stored) and the markers of signals expired before `signalsExpiredBefore` (no fire can be made for
    /// them). Memory stays bounded by the traffic of the retention window.
    public mutating func prune(settledBefore: Double, signalsExpiredBefore: Double) {
        while settledHead < settled.count, settled[settledHead].at < settledBefore {
            let entry = settled[settledHead]
            if let id = entry.id, book.fires[id] != nil {
                book.forget(id)
                changes.append(.fireForgotten(id: id))
            }
            if let ticket = entry.ticket { settledTickets.remove(ticket) }
            settledHead += 1
        }
        if settledHead > 1024, settledHead * 2 > settled.count {
            settled.removeFirst(settledHead)
            settledHead = 0
        }
        for (signal, entry) in markers where entry.expiresAt < signalsExpiredBefore {
            for user in entry.users {
                book.forgetMarker(signalID: signal, user: user)
                changes.append(.markerForgotten(signalID: signal, user: user))
            }
            markers[signal] = nil
        }
    }

}
