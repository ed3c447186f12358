import Dispatch
import Foundation
import Synchronization

/// The time limits of every `WakeSignal.wait(timeout:)` in the process, kept by one thread that sleeps until the
/// earliest. A limit costs its waiter an entry in a short list (no task, no timer of the shared pool); a limit ended
/// early by its signal is taken out of the list, and the thread is woken only when a new limit is earlier than the
/// one it sleeps until. (A `Task.sleep` raced against the signal in a task group cost every wait two child tasks, a
/// dispatch timer and the wake-ups of all three: a few thread hand-offs for each commit round that waited.)
final class WakeDeadlines: Sendable {
    /// The process's one.
    static let shared = WakeDeadlines()

    private struct Entry {
        var id: UInt64
        var at: ContinuousClock.Instant
        var expire: @Sendable () -> Void
    }

    private struct State {
        var nextID: UInt64 = 0
        var entries: [Entry] = []
        var started = false
        /// Whether the thread sleeps, and until when (nil: until rung).
        var asleep = false
        var until: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let bell = DispatchSemaphore(value: 0)

    /// A list of limits of its own, its thread started with the first (the process shares `shared`).
    init() {}

    /// Calls `expire` on the thread once `after` has passed, unless `cancel` is called with the id first.
    func schedule(after: Duration, _ expire: @escaping @Sendable () -> Void) -> UInt64 {
        let at = ContinuousClock.now + after
        let (id, ring, start) = state.withLock { s -> (UInt64, Bool, Bool) in
            s.nextID += 1
            s.entries.append(Entry(id: s.nextID, at: at, expire: expire))
            let start = !s.started
            s.started = true
            // Asleep past this limit: woken to sleep until it instead (once: it reckons again before sleeping).
            let ring = s.asleep && (s.until.map { at < $0 } ?? true)
            if ring { s.asleep = false }
            return (s.nextID, ring, start)
        }
        if start { startThread() }
        if ring { bell.signal() }
        return id
    }

    /// Takes a limit out (its waiter was signalled first); nothing when it has expired already.
    func cancel(_ id: UInt64) {
        state.withLock { s in
            if let index = s.entries.firstIndex(where: { $0.id == id }) { s.entries.remove(at: index) }
        }
    }

    /// How many limits are kept (for the tests).
    var pending: Int { state.withLock { $0.entries.count } }

    private func startThread() {
        let thread = Thread { [self] in run() }
        thread.name = "wake-deadlines"
        thread.start()
    }

    private func run() {
        while true {
            let now = ContinuousClock.now
            let due = state.withLock { s -> [Entry] in
                let due = s.entries.filter { $0.at <= now }
                if !due.isEmpty { s.entries.removeAll { $0.at <= now } }
                return due
            }
            for entry in due { entry.expire() }
            let until = state.withLock { s -> ContinuousClock.Instant? in
                s.until = s.entries.lazy.map(\.at).min()
                s.asleep = true
                return s.until
            }
            if let until {
                let wait = ContinuousClock.now.duration(to: until)
                if wait > .zero {
                    let (seconds, attoseconds) = wait.components
                    let nanoseconds = Int(min(seconds, 86_400)) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
                    _ = bell.wait(timeout: .now() + .nanoseconds(nanoseconds))
                }
            } else {
                bell.wait()
            }
            state.withLock { $0.asleep = false }
        }
    }
}
