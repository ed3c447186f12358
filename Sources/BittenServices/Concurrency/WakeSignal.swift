import Synchronization

/// A wake-up a loop can wait on with a time limit. A signal given while nobody waits is kept (one),
/// so the next wait returns at once. The wait is structured: a signal, the time limit or the
/// cancellation of the waiting task ends it, and nothing is left running afterwards (a limit ended early
/// is taken out of the deadline thread's list).
///
/// (An `AsyncStream` raced against a sleep in a task group does not work for this: cancelling the
/// losing `next()` finishes the stream for good, and every later wait returns at once. A sleep raced
/// against the signal in a task group works, at a few thread hand-offs per wait: `WakeDeadlines`.)
public final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        /// The wait the stored waiter belongs to, and a wait cancelled before it stored its waiter.
        var generation = 0
        var cancelledGeneration = -1
        /// The time limit of the stored waiter (`WakeDeadlines`), when it has one.
        var timer: UInt64?
    }

    private let state = Mutex(State())
    private let deadlines: WakeDeadlines

    /// A signal not yet raised.
    public init() { deadlines = .shared }

    /// A signal whose time limits `deadlines` keeps (the tests' own).
    init(deadlines: WakeDeadlines) { self.deadlines = deadlines }

    /// Wakes the current waiter, or the next one.
    public func signal() {
        let (waiter, timer) = state.withLock { s -> (CheckedContinuation<Void, Never>?, UInt64?) in
            guard let waiter = s.waiter else {
                s.pending = true
                return (nil, nil)
            }
            s.waiter = nil
            defer { s.timer = nil }
            return (waiter, s.timer)
        }
        if let timer { deadlines.cancel(timer) }
        waiter?.resume()
    }

    /// The time limit of wait `generation` has passed: its waiter goes on (nothing when it went on already).
    private func expire(_ generation: Int) {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { s in
            guard s.generation == generation, let waiter = s.waiter else { return nil }
            s.waiter = nil
            s.timer = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns when signalled, after `timeout`, or when the calling task is cancelled, whichever comes
    /// first. One waiter at a time. The time limit is kept by the process's deadline thread (`WakeDeadlines`), and
    /// taken out when the signal comes first.
    public func wait(timeout: Duration) async {
        let taken = state.withLock { s in
            defer { s.pending = false }
            return s.pending
        }
        if taken { return }
        await waitForSignal(timeout: timeout)
    }

    /// Returns when signalled or when the calling task is cancelled (no timer: nothing runs meanwhile).
    public func wait() async {
        let taken = state.withLock { s in
            defer { s.pending = false }
            return s.pending
        }
        if taken { return }
        await waitForSignal(timeout: nil)
    }

    private func waitForSignal(timeout: Duration?) async {
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
                    // Under the lock, so that the limit is known before a signal can take the waiter.
                    if let timeout {
                        s.timer = deadlines.schedule(after: timeout) { [self] in expire(generation) }
                    }
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let (waiter, timer) = state.withLock { s -> (CheckedContinuation<Void, Never>?, UInt64?) in
                guard s.generation == generation else { return (nil, nil) }
                guard let waiter = s.waiter else {
                    // Cancelled before the waiter was stored: it resumes itself when it gets there.
                    s.cancelledGeneration = generation
                    return (nil, nil)
                }
                s.waiter = nil
                defer { s.timer = nil }
                return (waiter, s.timer)
            }
            if let timer { deadlines.cancel(timer) }
            waiter?.resume()
        }
    }
}
