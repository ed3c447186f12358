import BittenCore
import BittenServices
import Foundation
import Hummingbird

/// `/nodes` and `/nodes/{uuid}`.
enum NodeRoutes {
    struct NodeView: Encodable {
        var uuid: String
        var nodeId: String
        var status: String
        var account: Int
        var broker: String
        var server: String
        var currency: String
        var balance: Double
        var equity: Double
        var leverage: Int
        var lastHeartbeat: Double
        var heartbeatAgeSeconds: Double
        var latencyMs: Double?
        var uptimeSeconds: Double
        var reconnects: Int
        var accountSwitches: Int
        var offlineReason: String?
        var company: String
        var version: String
        /// A ping unanswered past the fire timeout: the EA reads no command, fires to it will wait.
        var commandsUnread: Bool
        /// The broker's name of each canonical instrument this EA lists or quotes.
        var brokerSymbols: [BrokerName]
        /// What the first registration fixed, a switch waiting for approval, the latest refused message.
        var pin: Pin?
        var pendingSwitch: Pin?
        var lastRefused: Refused?

        /// An account on a server from a machine, since when (the pin, or the switch that waits).
        struct Pin: Encodable {
            var account: Int
            var server: String
            var peer: String
            var since: Double
        }

        struct Refused: Encodable {
            var peer: String
            var account: Int
            var reason: String
            var at: Double
        }

        struct BrokerName: Encodable {
            var symbol: String
            var brokerSymbol: String
        }

        init(_ n: NodeRecord, now: Double) {
            pin = n.pin.map { Pin(account: $0.account, server: $0.server, peer: $0.peer, since: $0.since) }
            pendingSwitch = n.pendingSwitch.map {
                Pin(account: $0.account, server: $0.server, peer: $0.peer, since: $0.at)
            }
            lastRefused = n.lastRefused.map {
                Refused(peer: $0.peer, account: $0.account, reason: $0.reason, at: $0.at)
            }
            company = n.company
            version = n.version
            commandsUnread = n.commandsUnread
            brokerSymbols = n.brokerSymbols.names.sorted { $0.key < $1.key }.map {
                BrokerName(symbol: $0.key, brokerSymbol: $0.value)
            }
            uuid = n.uuid
            nodeId = n.nodeID
            status = n.online ? "online" : "offline"
            account = n.account
            broker = n.broker
            server = n.server
            currency = n.currency
            balance = n.balance
            equity = n.equity
            leverage = n.leverage
            lastHeartbeat = n.lastHeartbeat
            heartbeatAgeSeconds = max(0, now - n.lastHeartbeat)
            latencyMs = n.latencyMs
            uptimeSeconds = n.uptime(at: now)
            reconnects = n.reconnects
            accountSwitches = n.accountSwitches
            offlineReason = n.offlineReason
        }
    }

    struct Page: Encodable {
        var total: Int
        var page: Int
        var pageSize: Int
        var nodes: [NodeView]
    }

    static let sortKeys = ["uuid", "last_heartbeat", "balance", "equity", "latency", "broker"]

    static func add(to router: Router<BasicRequestContext>, _ deps: DashboardDependencies) {
        router.get("/nodes") { request, _ in
            guard let registry = deps.registry else {
                throw APIError(.serviceUnavailable, code: "unavailable", "node registry is not running in this process")
            }
            let query = request.uri.queryParameters
            let page = try intParameter(query["page"].map(String.init), name: "page", default: 1, range: 1...1_000_000)
            let size = try intParameter(
                query["page_size"].map(String.init), name: "page_size", default: 50, range: 1...500)
            // Filter and sort indices with precomputed keys: moving 10 000 full records around in a
            // sort is what made this slow.
            let all = registry.all
            var selected = Array(all.indices)
            if let status = query["status"].map(String.init) {
                guard status == "online" || status == "offline" else {
                    throw APIError(.badRequest, code: "bad_parameter", "status must be online or offline")
                }
                selected = selected.filter { all[$0].online == (status == "online") }
            }
            if let broker = query["broker"].map(String.init) { selected = selected.filter { all[$0].broker == broker } }
            if let search = query["q"].map(String.init), !search.isEmpty {
                selected = selected.filter {
                    all[$0].uuid.contains(search) || String(all[$0].account).contains(search)
                        || all[$0].broker.contains(search)
                }
            }
            let sort = query["sort"].map(String.init) ?? "uuid"
            guard sortKeys.contains(sort) else {
                throw APIError(
                    .badRequest, code: "bad_parameter", "sort must be one of \(sortKeys.joined(separator: ", "))")
            }
            let descending = query["order"].map(String.init) == "desc"
            switch sort {
            case "uuid", "broker":
                // Every key's bytes in one buffer, compared with memcmp (String comparison is several
                // times slower, and this sorts 10 000 keys per request).
                var blob: [UInt8] = []
                var spans: [(start: Int, count: Int)] = []
                spans.reserveCapacity(all.count)
                for node in all {
                    let start = blob.count
                    if sort == "broker" {
                        blob += node.broker.utf8
                        blob.append(0)
                    }
                    blob += node.uuid.utf8
                    spans.append((start, blob.count - start))
                }
                blob.withUnsafeBufferPointer { bytes in
                    let base = bytes.baseAddress!
                    func less(_ a: Int, _ b: Int) -> Bool {
                        let x = spans[a]
                        let y = spans[b]
                        let order = memcmp(base + x.start, base + y.start, min(x.count, y.count))
                        return order != 0 ? order < 0 : x.count < y.count
                    }
                    selected.sort { a, b in descending ? less(b, a) : less(a, b) }
                }
            default:
                let keys: [Double] = all.map { n in
                    switch sort {
                    case "last_heartbeat": n.lastHeartbeat
                    case "balance": n.balance
                    case "equity": n.equity
                    default: n.latencyMs ?? .infinity
                    }
                }
                selected.sort { a, b in descending ? keys[a] > keys[b] : keys[a] < keys[b] }
            }
            let now = Date().timeIntervalSince1970
            let slice = selected.dropFirst((page - 1) * size).prefix(size).map { NodeView(all[$0], now: now) }
            let nodes = selected
            return try json(Page(total: nodes.count, page: page, pageSize: size, nodes: Array(slice)))
        }
        router.get("/nodes/:uuid") { _, context in
            let uuid = context.parameters.get("uuid") ?? ""
            guard UserID.isValid(uuid) else {
                throw APIError(.badRequest, code: "bad_parameter", "'\(uuid)' is not a valid UUID")
            }
            guard let node = deps.registry?.node(uuid) else {
                throw APIError(.notFound, code: "not_found", "no node \(uuid)")
            }
            return try json(NodeView(node, now: Date().timeIntervalSince1970))
        }
        // Operator decisions on a node's pin (token required): take a pending account switch, dismiss it
        // (an intruder), or clear the pin so the next HELLO pins again.
        let actions: [(String, @Sendable (NodeRegistry, String) -> Bool)] = [
            ("approve", { $0.approveSwitch($1) }), ("dismiss", { $0.dismissSwitch($1) }), ("unpin", { $0.unpin($1) }),
        ]
        for (action, apply) in actions {
            router.post("/nodes/:uuid/\(action)") { request, context in
                try BearerToken.require(request, deps.apiToken)
                let uuid = context.parameters.get("uuid") ?? ""
                guard UserID.isValid(uuid) else {
                    throw APIError(.badRequest, code: "bad_parameter", "'\(uuid)' is not a valid UUID")
                }
                guard let registry = deps.registry, registry.node(uuid) != nil else {
                    throw APIError(.notFound, code: "not_found", "no node \(uuid) in this process")
                }
                guard apply(registry, uuid) else {
                    throw APIError(
                        .conflict, code: "nothing_to_\(action)",
                        action == "unpin" ? "no pin" : "no account switch is pending for \(uuid)")
                }
                return try json(NodeView(registry.node(uuid)!, now: Date().timeIntervalSince1970))
            }
        }
    }

    static func intParameter(_ text: String?, name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw APIError(
                .badRequest, code: "bad_parameter",
                "\(name) must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }
}
