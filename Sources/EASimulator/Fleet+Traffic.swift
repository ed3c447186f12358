import BittenCore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import ZeroMQ

/// What the fleet sends on its own: the clock that paces it, heartbeats on 5555 and ticks on 5556.
extension Fleet {
    /// Sends heartbeats, ticks and bars on schedule until shutdown.
    func clockLoop() async {
        let clock = ContinuousClock()
        let phases = max(1, configuration.heartbeatPhases)
        let beat = configuration.heartbeatInterval / phases
        var phase = 0
        var nextHeartbeat = clock.now + beat
        var nextTick = clock.now + (configuration.tickInterval ?? .seconds(3600))
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let wake = min(nextHeartbeat, nextTick)
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(until: wake, clock: clock) } } catch {
                return
            }
            let now = clock.now
            if now >= nextHeartbeat {
                sendHeartbeats(phase: phase, of: phases)
                phase = (phase + 1) % phases
                nextHeartbeat = nextHeartbeat + beat
                if nextHeartbeat < now { nextHeartbeat = now + beat }
            }
            if let interval = configuration.tickInterval, now >= nextTick {
                sendTicks()
                nextTick = nextTick + interval
                if nextTick < now { nextTick = now + interval }
            }
        }
    }

    /// Heartbeats of one phase: the EAs on every `phases`-th socket loop (EA i is on loop i modulo
    /// the loop count), so a wave wakes few loop threads, each once.
    func sendHeartbeats(phase: Int, of phases: Int) {
        let time = Self.now()
        let all = sockets.withLock { $0 }
        let loopCount = loops.count
        let out: [(Int, String, String)] = state.withLock { s in
            s.eas.indices.compactMap { i in
                guard (i % loopCount) % phases == phase, !s.eas[i].silenced && !s.eas[i].stopped else { return nil }
                return (i, EAMessages.dealerHeartbeat(s.eas[i], time: time), EAMessages.heartbeat(s.eas[i], time: time))
            }
        }
        for (i, dealer, market) in out where i < all.count {
            all[i].dealer.post([wire(dealer)])
            all[i].market.post([wire(market)])
        }
        state.withLock {
            $0.stats.heartbeatsSent += out.count * 2
            $0.stats.sent += out.count * 2
        }
    }

    func sendTicks() {
        let time = Self.now()
        let epoch = Int(Date().timeIntervalSince1970)
        let all = sockets.withLock { $0 }
        let sendBars = configuration.sendOHLC
        let faithful = configuration.fidelity == .v205
        let watch = configuration.allSymbols
        let out: [(Int, [Message], [String])] = state.withLock { s in
            s.market.step()
            var barMessages: [String: (Int, Double, Double, Double, Double)] = [:]
            for symbol in watch {
                guard let q = s.market.quote(symbol) else { continue }
                let minute = epoch / 60
                if var bar = s.bars[symbol], bar.minute == minute {
                    bar.high = max(bar.high, q.bid)
                    bar.low = min(bar.low, q.bid)
                    bar.close = q.bid
                    s.bars[symbol] = bar
                } else {
                    if let bar = s.bars[symbol], sendBars {
                        barMessages[symbol] = (bar.minute * 60, bar.open, bar.high, bar.low, bar.close)
                    }
                    s.bars[symbol] = (q.bid, q.bid, q.bid, q.bid, minute)
                }
            }
            var result: [(Int, [Message], [String])] = []
            for i in s.eas.indices where !s.eas[i].silenced && !s.eas[i].stopped {
                var messages: [Message] = []
                for symbol in s.eas[i].marketWatch {
                    guard let q = s.market.quote(symbol), let digits = s.market.instruments[symbol]?.digits else {
                        continue
                    }
                    let name = configuration.brokerName(symbol)
                    messages.append(
                        wire(
                            EAMessages.tick(
                                s.eas[i], symbol: name, bid: q.bid, ask: q.ask, spread: q.spread, digits: digits,
                                time: time)))
                    if let bar = barMessages[symbol] {
                        messages.append(
                            wire(
                                EAMessages.ohlc(
                                    s.eas[i], symbol: name, barTime: bar.0, open: bar.1, high: bar.2, low: bar.3,
                                    close: bar.4, digits: digits, time: time)))
                    }
                }
                s.eas[i].ticks += messages.count
                var replies: [String] = []
                if faithful {
                    // The simulated broker closes positions whose stop or target the market reached; the
                    // EA reports none of it.
                    brokerStops(&s.eas[i], market: s.market)
                    // The chart symbol ticked: the EA reads one command.
                    if !s.eas[i].quiet, !s.eas[i].inbox.isEmpty {
                        let payload = s.eas[i].inbox.removeFirst()
                        replies = read(&s, index: i, payload: payload)
                    }
                }
                result.append((i, messages, replies))
            }
            let count = result.reduce(0) { $0 + $1.1.count }
            s.stats.ticksSent += count
            s.stats.sent += count
            return result
        }
        for (i, messages, replies) in out where i < all.count {
            all[i].market.post(messages)
            if !replies.isEmpty { all[i].confirm.post(replies.map { wire($0) }) }
        }
    }
}
