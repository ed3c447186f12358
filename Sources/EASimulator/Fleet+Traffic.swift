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
        let phases = configuration.heartbeatPhases > 0 ? configuration.heartbeatPhases : loops.count
        let beat = configuration.heartbeatInterval / phases
        var phase = 0
        var nextHeartbeat = clock.now + beat
        let tickPhases = configuration.tickPhases > 0 ? configuration.tickPhases : loops.count
        let tickStep = (configuration.tickInterval ?? .seconds(3600)) / tickPhases
        var tickPhase = 0
        var nextTick = clock.now + tickStep
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
            if configuration.tickInterval != nil, now >= nextTick {
                sendTicks(phase: tickPhase, of: tickPhases)
                tickPhase = (tickPhase + 1) % tickPhases
                nextTick = nextTick + tickStep
                if nextTick < now { nextTick = now + tickStep }
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

    /// Ticks of one phase: the EAs on every `phases`-th socket loop. The market moves, and the minute's bars
    /// are completed, at the first phase of each interval.
    func sendTicks(phase: Int = 0, of phases: Int = 1) {
        let time = Self.now()
        let epoch = Int(Date().timeIntervalSince1970)
        let all = sockets.withLock { $0 }
        let sendBars = configuration.sendOHLC
        let faithful = configuration.fidelity == .v205
        let watch = configuration.allSymbols
        let loopCount = loops.count
        let out: [(Int, [Message], [String])] = state.withLock { s in
            if phase == 0 { moveMarket(&s, watch: watch, epoch: epoch, sendBars: sendBars) }
            let barMessages = s.completedBars
            var result: [(Int, [Message], [String])] = []
            for i in s.eas.indices
            where (i % loopCount) % phases == phase && !s.eas[i].silenced && !s.eas[i].stopped {
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
                                    s.eas[i], symbol: name, barTime: bar.time, open: bar.open, high: bar.high,
                                    low: bar.low, close: bar.close, digits: digits, time: time)))
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

    /// The market's move of one tick interval, and the minute bars it completes (kept for every phase's EAs).
    private func moveMarket(_ s: inout State, watch: [String], epoch: Int, sendBars: Bool) {
        s.market.step()
        s.completedBars = [:]
        let minute = epoch / 60
        for symbol in watch {
            guard let q = s.market.quote(symbol) else { continue }
            if var bar = s.bars[symbol], bar.minute == minute {
                bar.high = max(bar.high, q.bid)
                bar.low = min(bar.low, q.bid)
                bar.close = q.bid
                s.bars[symbol] = bar
            } else {
                if let bar = s.bars[symbol], sendBars {
                    s.completedBars[symbol] = (bar.minute * 60, bar.open, bar.high, bar.low, bar.close)
                }
                s.bars[symbol] = (q.bid, q.bid, q.bid, q.bid, minute)
            }
        }
    }
}
