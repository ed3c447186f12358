import BittenCore
import BittenServices
import Foundation

/// `/nodes`, `/nodes/{uuid}` and the operator's decisions on a node's pin.
extension BittenAPI {
    func nodes() throws -> any NodeDirectory {
        guard let nodes = ports.nodes else {
            throw APIError(.serviceUnavailable, code: "unavailable", "node registry is not running in this process")
        }
        return nodes
    }

    func listNodes(_ input: Operations.ListNodes.Input) async throws -> Operations.ListNodes.Output {
        let query = input.query
        let page = try Page(limit: query.limit, offset: query.offset, defaultLimit: 50, maxLimit: Page.maxNodeLimit)
        // Filter and sort indices with precomputed keys: moving 10 000 full records around in a sort is what made
        // this slow.
        let all = try nodes().all
        var selected = Array(all.indices)
        if let status = query.status { selected = selected.filter { all[$0].online == (status == .online) } }
        if let broker = try Self.bounded(query.broker, "broker", max: 128) {
            selected = selected.filter { all[$0].broker == broker }
        }
        if let search = try Self.bounded(query.q, "q", max: 128), !search.isEmpty {
            selected = selected.filter {
                all[$0].uuid.contains(search) || String(all[$0].account).contains(search)
                    || all[$0].broker.contains(search)
            }
        }
        Self.sort(&selected, of: all, by: query.sort ?? .uuid, descending: query.order == .desc)
        let now = Date().timeIntervalSince1970
        let slice = selected.dropFirst(page.offset).prefix(page.limit).map { Self.node(all[$0], now: now) }
        return .ok(
            .init(body: .json(.init(total: selected.count, limit: page.limit, offset: page.offset, nodes: slice))))
    }

    static func sort(
        _ selected: inout [Int], of all: [NodeRecord], by sort: Operations.ListNodes.Input.Query.SortPayload,
        descending: Bool
    ) {
        switch sort {
        case .uuid, .broker:
            // Every key's bytes in one buffer, compared with memcmp (String comparison is several times slower,
            // and this sorts 10 000 keys per request).
            var blob: [UInt8] = []
            var spans: [(start: Int, count: Int)] = []
            spans.reserveCapacity(all.count)
            for node in all {
                let start = blob.count
                if sort == .broker {
                    blob += node.broker.utf8
                    blob.append(0)
                }
                blob += node.uuid.utf8
                spans.append((start, blob.count - start))
            }
            blob.withUnsafeBufferPointer { bytes in
                guard let base = bytes.baseAddress else { return }
                func less(_ a: Int, _ b: Int) -> Bool {
                    let x = spans[a]
                    let y = spans[b]
                    let order = memcmp(base + x.start, base + y.start, min(x.count, y.count))
                    return order != 0 ? order < 0 : x.count < y.count
                }
                selected.sort { a, b in descending ? less(b, a) : less(a, b) }
            }
        case .lastHeartbeat, .balance, .equity, .latency:
            let keys: [Double] = all.map { n in
                switch sort {
                case .lastHeartbeat: n.lastHeartbeat
                case .balance: n.balance
                case .equity: n.equity
                default: n.latencyMs ?? .infinity
                }
            }
            selected.sort { a, b in descending ? keys[a] > keys[b] : keys[a] < keys[b] }
        }
    }

    func getNode(_ input: Operations.GetNode.Input) async throws -> Operations.GetNode.Output {
        let uuid = try Self.validUUID(input.path.uuid)
        guard let node = try nodes().node(uuid) else {
            throw APIError(.notFound, code: "not_found", "no node \(uuid)")
        }
        return .ok(.init(body: .json(Self.node(node, now: Date().timeIntervalSince1970))))
    }

    func approveNodeSwitch(_ input: Operations.ApproveNodeSwitch.Input) async throws
        -> Operations.ApproveNodeSwitch.Output
    {
        .ok(.init(body: .json(try decide(input.path.uuid, "approve") { $0.approveSwitch($1) })))
    }

    func dismissNodeSwitch(_ input: Operations.DismissNodeSwitch.Input) async throws
        -> Operations.DismissNodeSwitch.Output
    {
        .ok(.init(body: .json(try decide(input.path.uuid, "dismiss") { $0.dismissSwitch($1) })))
    }

    func unpinNode(_ input: Operations.UnpinNode.Input) async throws -> Operations.UnpinNode.Output {
        .ok(.init(body: .json(try decide(input.path.uuid, "unpin") { $0.unpin($1) })))
    }

    /// An operator's decision on a node's pin: take a pending account switch, dismiss it (an intruder), or clear
    /// the pin so the next HELLO pins again.
    private func decide(
        _ text: String, _ action: String, _ apply: (any NodeDirectory, String) -> Bool
    ) throws -> Components.Schemas.Node {
        let uuid = try Self.validUUID(text)
        guard let registry = ports.nodes, registry.node(uuid) != nil else {
            throw APIError(.notFound, code: "not_found", "no node \(uuid) in this process")
        }
        guard apply(registry, uuid), let node = registry.node(uuid) else {
            throw APIError(
                .conflict, code: "nothing_to_\(action)",
                action == "unpin" ? "no pin" : "no account switch is pending for \(uuid)")
        }
        return Self.node(node, now: Date().timeIntervalSince1970)
    }

    static func validUUID(_ text: String) throws -> String {
        guard UserID.isValid(text) else {
            throw APIError(.badRequest, code: "bad_parameter", "'\(text)' is not a valid UUID")
        }
        return text
    }

    /// A node as the API shows it.
    static func node(_ n: NodeRecord, now: Double) -> Components.Schemas.Node {
        .init(
            uuid: n.uuid, nodeId: n.nodeID, status: n.online ? .online : .offline, account: n.account,
            broker: n.broker, server: n.server, currency: n.currency, balance: n.balance, equity: n.equity,
            leverage: n.leverage, lastHeartbeat: n.lastHeartbeat, heartbeatAgeSeconds: max(0, now - n.lastHeartbeat),
            latencyMs: n.latencyMs, uptimeSeconds: n.uptime(at: now), reconnects: n.reconnects,
            accountSwitches: n.accountSwitches, offlineReason: n.offlineReason, company: n.company,
            version: n.version,
            // A ping unanswered past the fire timeout: the EA reads no command, fires to it will wait.
            commandsUnread: n.commandsUnread,
            pin: n.pin.map { .init(account: $0.account, server: $0.server, peer: $0.peer, since: $0.since) },
            pendingSwitch: n.pendingSwitch.map {
                .init(account: $0.account, server: $0.server, peer: $0.peer, since: $0.at)
            },
            lastRefused: n.lastRefused.map { .init(peer: $0.peer, account: $0.account, reason: $0.reason, at: $0.at) },
            // The broker's name of each canonical instrument this EA lists or quotes.
            brokerSymbols: n.brokerSymbols.names.sorted { $0.key < $1.key }.map {
                .init(symbol: $0.key, brokerSymbol: $0.value)
            })
    }
}
