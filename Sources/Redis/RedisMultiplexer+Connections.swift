import CHiredis
import Foundation
import Logging
import Synchronization

/// Connections: connect and log in, losses and failures, the health every caller sees.
extension RedisMultiplexer {
    func connect(_ link: Link) {
        guard let ac = redisAsyncConnect(url.host, Int32(url.port)) else {
            return connectFailed(link, "out of memory")
        }
        if ac.pointee.err != 0 {
            let reason = String(cString: ac.pointee.errstr)
            redisAsyncFree(ac)
            return connectFailed(link, reason)
        }
        link.owner = self
        link.context = ac
        link.phase = .connecting(since: now)
        let token = Unmanaged.passUnretained(link).toOpaque()
        ac.pointee.data = token
        ac.pointee.ev.data = token
        ac.pointee.ev.addRead = { Unmanaged<Link>.fromOpaque($0!).takeUnretainedValue().wantRead = true }
        ac.pointee.ev.delRead = { Unmanaged<Link>.fromOpaque($0!).takeUnretainedValue().wantRead = false }
        ac.pointee.ev.addWrite = { Unmanaged<Link>.fromOpaque($0!).takeUnretainedValue().wantWrite = true }
        ac.pointee.ev.delWrite = { Unmanaged<Link>.fromOpaque($0!).takeUnretainedValue().wantWrite = false }
        ac.pointee.ev.cleanup = { Unmanaged<Link>.fromOpaque($0!).takeUnretainedValue().contextFreed() }
        redisAsyncSetConnectCallback(ac) { ac, status in
            guard let data = ac?.pointee.data else { return }
            let link = Unmanaged<Link>.fromOpaque(data).takeUnretainedValue()
            link.owner?.connectFinished(
                link, ok: status == REDIS_OK, error: ac.map { String(cString: $0.pointee.errstr) } ?? "")
        }
        redisAsyncSetDisconnectCallback(ac) { ac, _ in
            guard let ac, let data = ac.pointee.data else { return }
            let link = Unmanaged<Link>.fromOpaque(data).takeUnretainedValue()
            link.lastError = ac.pointee.err != 0 ? String(cString: ac.pointee.errstr) : "connection closed"
        }
        // Log-in goes first on the connection; hiredis sends it once connected.
        var login: [[[UInt8]]] = []
        if let password = url.password {
            login.append([Array("AUTH".utf8)] + (url.user.map { [Array($0.utf8)] } ?? []) + [Array(password.utf8)])
        }
        if url.database != 0 { login.append([Array("SELECT".utf8), Array(String(url.database).utf8)]) }
        if !login.isEmpty {
            issue(Job(commands: login, request: Request(expected: login.count, login: link)), on: link)
        }
        // Nobody waits for this reply: a refusal (an ACL user without CLIENT) leaves the connection as it is.
        if let clientName {
            issue(
                Job(
                    commands: [[Array("CLIENT".utf8), Array("SETNAME".utf8), Array(clientName.utf8)]],
                    request: Request(expected: 1)), on: link)
        }
    }

    /// A connection name as Redis takes it (no spaces or newlines): anything outside `[A-Za-z0-9._:-]` becomes `_`.
    static func clientNameSafe(_ name: String) -> String {
        String(
            name.unicodeScalars.prefix(64).map { scalar -> Character in
                switch scalar {
                case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-", ":": Character(scalar)
                default: "_"
                }
            })
    }

    fileprivate func connectFinished(_ link: Link, ok: Bool, error: String) {
        guard ok else {
            // hiredis frees the context after this callback; `contextFreed` handles the failure.
            link.lastError = error.isEmpty ? "connection refused" : error
            return
        }
        link.phase = .up
        link.backoff.connected(at: now)
        ready.store(true, ordering: .relaxed)
        let recovered = status.withLock { state -> Bool in
            let was = state
            if state != .closed { state = .ready }
            if case .unavailable = was { return true }
            return false
        }
        if recovered { logger.info("redis reconnected", metadata: ["bitten.redis.url": "\(url)"]) }
        let waiting = link.waiting
        link.waiting = []
        for job in waiting where !job.request.isFinished { issue(job, on: link) }
    }

    /// The hiredis context is gone (connection lost, connect failed or timed out): its outstanding
    /// commands have been failed by hiredis; schedule the next attempt.
    func contextFreed(_ link: Link) {
        let wasUp: Bool
        if case .up = link.phase { wasUp = true } else { wasUp = false }
        link.context = nil
        link.wantRead = false
        link.wantWrite = false
        link.outstanding = 0
        link.phase = .down
        let reason = link.lastError ?? "connection lost"
        if wasUp {
            _ = link.backoff.lost(at: now)
        } else {
            _ = link.backoff.failed(at: now)
            failWaiting(link, RedisError(.connectionFailed, "cannot connect to \(url.host):\(url.port): \(reason)"))
        }
        guard running else { return }
        let anyUp = links.contains { if case .up = $0.phase { return true } else { return false } }
        if !anyUp {
            ready.store(false, ordering: .relaxed)
            let first = status.withLock { state -> Bool in
                guard state != .closed else { return false }
                let was = state
                state = .unavailable(reason)
                if case .unavailable = was { return false }
                return true
            }
            if first {
                logger.warning(
                    "redis unavailable", metadata: ["bitten.redis.url": "\(url)", "bitten.reason": "\(reason)"])
            }
        }
    }

    func connectFailed(_ link: Link, _ reason: String) {
        link.lastError = reason
        link.phase = .down
        _ = link.backoff.failed(at: now)
        failWaiting(link, RedisError(.connectionFailed, "cannot connect to \(url.host):\(url.port): \(reason)"))
        status.withLock { state in if state != .closed, state != .ready { state = .unavailable(reason) } }
    }

    func failWaiting(_ link: Link, _ error: RedisError) {
        let waiting = link.waiting
        link.waiting = []
        for job in waiting { job.request.finish(.failure(error)) }
    }

    func replied(on link: Link) { link.outstanding = max(0, link.outstanding - 1) }

    /// A connection broke: the state says unavailable until a reply or a connection proves otherwise
    /// (the state as of the last command, like the blocking pool's).
    func noteLost() {
        ready.store(false, ordering: .relaxed)
        let first = status.withLock { state -> Bool in
            guard state != .closed else { return false }
            let was = state
            state = .unavailable("connection lost")
            if case .unavailable = was { return false }
            return true
        }
        if first {
            logger.warning(
                "redis unavailable", metadata: ["bitten.redis.url": "\(url)", "bitten.reason": "connection lost"])
        }
    }

    /// A reply came: the server is there.
    func noteAlive() {
        guard !ready.load(ordering: .relaxed) else { return }
        ready.store(true, ordering: .relaxed)
        status.withLock { state in if state != .closed { state = .ready } }
    }
}
