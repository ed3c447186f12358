import Synchronization

/// A wake-up a loop can wait on with a time limit. A signal given while nobody waits is kept (one),
/// so the next wait returns at once.
///
/// (An `AsyncStream` raced against a sleep in a task group does not work for this: cancelling the
/// losing `next()` finishes the stream for good, and every later wait returns at once.)
public final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        var generation = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Wakes the current waiter, or the next one.
    public func signal() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { s in
            guard let waiter = s.waiter else {
                s.pending = true
                return nil
            }
            s.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns when signalled or after `timeout`, whichever comes first. One waiter at a time.
    public func wait(timeout: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let armed: Int? = state.withLock { s in
                if s.pending {
                    s.pending = false
                    return nil
                }
                s.generation += 1
                s.waiter = continuation
                return s.generation
            }
            guard let armed else { return continuation.resume() }
            Task { [self] in
                try? await Task.sleep(for: timeout)
                let expired: CheckedContinuation<Void, Never>? = state.withLock { s in
                    guard s.generation == armed, let waiter = s.waiter else { return nil }
                    s.waiter = nil
                    return waiter
                }
                expired?.resume()
            }
        }
    }
}
