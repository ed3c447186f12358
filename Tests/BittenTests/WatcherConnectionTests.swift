import BittenTestSupport
import Foundation
import Redis
import Testing

extension EndToEnd.TradePathTests {
    /// The position watcher re-reads every open position of a shard whose ledger moved (every 2 s under load: all of
    /// them, in pipelines of 500 HGETALLs), and the dashboard's snapshot reads every open position once a second. Both
    /// do so over connections of their own: on the trade client's, a fire's commands queued behind those pipelines for
    /// tens of milliseconds each time (`bitten-bench fire`, the watcher's: p99 16–19 ms and p50 up to 7.6 ms, against
    /// 10–12 ms and 1.3–2.0 ms with its own). Watched with MONITOR, every read of the open positions comes from a
    /// connection named for the watcher or for the HTTP API, none from the trade path's.
    @Test func positionReadsGoOverConnectionsOfTheirOwn() async throws {
        let system = try await start(eas: 1)
        defer { system.stop() }
        let uuid = system.fleet.uuids[0]
        try await addUser(system, uuid, tier: "RECRUIT")
        let url = RedisURL(host: "127.0.0.1", port: try #require(system.bitten.managedRedis).port)
        let monitor = try RedisConnection(url: url)
        defer { monitor.close() }
        #expect(try monitor.command(["MONITOR"]).string == "OK")
        try await postSignal(system, signal("SIG_WATCH_CONN_1"))
        let (_, ticket) = try await fireAndFill(system, "SIG_WATCH_CONN_1", uuid)
        monitor.setTimeout(.milliseconds(200))
        var reads: [String] = []
        func read(until done: () -> Bool, seconds: Double) {
            let until = Date().addingTimeInterval(seconds)
            while Date() < until && !done() {
                guard let line = try? monitor.readReply().string else { continue }
                if line.contains("\"HGETALL\" \"position:") || line.contains("\"SMEMBERS\" \"open_positions:") {
                    reads.append(line)
                }
            }
        }
        // The fill moved the ledger of the user's shard: the watcher reads that shard's positions within its 2 s
        // refresh (perhaps while the fill was awaited: MONITOR kept those lines).
        read(until: { reads.contains { $0.contains(":\(ticket)\"") } }, seconds: 8)
        let byWatcher = reads.count
        #expect(byWatcher > 0, "no read of position \(ticket)")
        // The API lists the open positions (what the dashboard's snapshot does each second).
        let (_, listed) = try await HTTP.json(system.api + "/positions")
        #expect((listed["positions"] as? [[String: Any]])?.first?["ticket"] as? Int == ticket, "\(listed)")
        read(until: { reads.dropFirst(byWatcher).contains { $0.contains(":\(ticket)\"") } }, seconds: 3)
        // Who sent them: `[db address]` in each line, the address's name in CLIENT LIST.
        let names = try clientNames(url)
        var senders: Set<String> = []
        for line in reads {
            let address = line.split(separator: "[").dropFirst().first?.split(separator: "]").first?
                .split(separator: " ").last.map(String.init)
            let name = address.flatMap { names[$0] } ?? "nothing"
            senders.insert(name)
            #expect(
                name == "bitten.redis.position_watcher" || name == "bitten.redis.http",
                "\(line) came from \(address ?? "?") named \(name)")
        }
        #expect(senders == ["bitten.redis.position_watcher", "bitten.redis.http"], "\(reads)")
    }

    /// Each connection's address and its name (`CLIENT SETNAME`; "" for none), from CLIENT LIST.
    func clientNames(_ url: RedisURL) throws -> [String: String] {
        let probe = try RedisConnection(url: url)
        defer { probe.close() }
        var names: [String: String] = [:]
        for line in (try probe.command(["CLIENT", "LIST"]).string ?? "").split(separator: "\n") {
            var fields: [String: String] = [:]
            for pair in line.split(separator: " ") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
            }
            if let address = fields["addr"] { names[address] = fields["name"] ?? "" }
        }
        return names
    }
}
