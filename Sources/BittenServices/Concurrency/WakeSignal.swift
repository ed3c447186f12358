import Synchronization

/// A wake-up a loop can wait on with a time limit. A signal given while nobody waits is kept (one),
/// so the next wait returns at once. The wait is structured: a signal, the time limit or the
/// cancellation of the waiting task ends it, and nothing is left running afterwards.
///
/// (An `AsyncStream` raced against a sleep in a task group does not work for this: cancelling the
/// losing `next()` finishes the stream for good, and every later wait returns at once.)
public final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        /// The wait the stored waiter belongs to, and a wait cancelled before it stored its waiter.
        var generation = 0
        var cancelledGeneration = -1
    }

    private let state = Mutex(State())

    /// A signal not yet raised.
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

    /// Returns when signalled, after `timeout`, or when the calling task is cancelled, whichever comes
    /// first. One waiter at a time.
    public func wait(timeout: Duration) async {
        let taken = state.withLock { s in
            defer { s.pending = false }
            return s.pending
        }
        if taken { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForSignal() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Returns when signalled or when the calling task is cancelled (no timer: nothing runs meanwhile).
    public func wait() async {
        let taken = state.withLock { s in
            defer { s.pending = false }
            return s.pending
        }
        if taken { return }
        await waitForSignal()
    }

    private func waitForSignal() async {
        let generation = state.withLock { s in
            s.generation += 1
            return s.generation
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s in
                    if s.pending || s.cancelledGeneration == generation {
                        s.pending = false
                        return true
                    }
                    s.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter: CheckedContinuation<Void, Never>? = state.withLock { s in
                guard s.generation == generation else { return nil }
                guard let waiter = s.waiter else {
                    // Cancelled before the waiter was stored: it resumes itself when it gets there.
                    s.cancelledGeneration = generation
                    return nil
                }
                s.waiter = nil
                return waiter
            }
            waiter?.resume()
        }
    }
}
