import BittenCore
import Foundation
import Logging

/// Operator controls on the fire desk: a user's trading state, and the system's close-all.
extension FireDesk {
    /// Sets a user's trading state through the owner of the user's shard (another process's through its inbox
    /// unless `routing` is false). With `control.closeAll`, every open position of the user is then closed, even
    /// when halted: the records of those closes.
    public func setTrading(userUUID: String, control: TradingControl, routing: Bool = true) async throws(FireRefusal)
        -> [FireRecord]
    {
        guard UserID.isValid(userUUID) else { throw refuse(.badRequest, "'\(userUUID)' is not a valid user UUID") }
        await engine.waitUntilTried(userUUID)
        if routing, let router, !engine.owns(userUUID),
            let records = try await router.route(
                .setTrading, shard: engine.shard(of: userUUID), userUUID: userUUID, control: control)
        {
            return records
        }
        var stored = control
        stored.closeAll = false
        stored.version = 0
        let done = try await guarded { try await engine.perform(userUUID) { $0.setTrading(userUUID, stored) } }
        guard done.value else { throw refuse(.userNotFound, "no user \(userUUID)") }
        if let notStored = done.notStored {
            throw FireRefusal(
                .storeUnavailable, "the trading state of \(userUUID) was not stored: \(notStored.message)")
        }
        logger.notice(
            "user trading state changed",
            metadata: [
                "bitten.node.uuid": "\(userUUID)", "bitten.trading.state": "\(control.state.rawValue)",
                "bitten.trading.by": "\(control.by)", "bitten.trading.reason": "\(control.reason)",
            ])
        guard control.closeAll else { return [] }
        return try await closeAll(userUUID: userUUID, routing: false, forced: true)
    }

    /// The close-all of a system state change (`bitten halt --close-all`): every user with open positions in
    /// the shards this process owns, each shard claimed once in Redis (another process, or a restart of this
    /// one, does not close them again). Each user's outcome is logged.
    func closeAllOwned(_ control: TradingControl, store: TradingControlStore, process: String) async {
        let open = engine.readAll { shard in shard.book.positions.positions.values.map(\.userUUID) }
        var byShard: [Int: Set<String>] = [:]
        for uuid in open { byShard[engine.shard(of: uuid), default: []].insert(uuid) }
        for (shard, users) in byShard.sorted(by: { $0.key < $1.key }) {
            guard (try? await store.claimCloseAll(version: control.version, shard: shard, process: process)) == true
            else { continue }
            for uuid in users.sorted() {
                do {
                    let records = try await closeAll(userUUID: uuid, routing: false, forced: true)
                    logger.notice(
                        "close-all sent on the operator's halt",
                        metadata: [
                            "bitten.node.uuid": "\(uuid)", "bitten.trading.version": "\(control.version)",
                            "bitten.positions": "\(records.count)",
                        ])
                } catch {
                    logger.error(
                        "close-all on the operator's halt refused",
                        metadata: [
                            "bitten.node.uuid": "\(uuid)", "bitten.code": "\(error.code.rawValue)",
                            "bitten.reason": "\(error.message)",
                        ])
                }
            }
        }
    }
}
