import Synchronization

/// A task executor whose jobs run on a `RedisClient`'s blocking workers. A task that prefers it
/// (`withTaskExecutorPreference`) runs on the worker thread, and so does each blocking `withConnection` it awaits:
/// the work and the code around it follow one another on one thread, with no hand-off to Swift's pool and back for
/// each call (two thread wake-ups, tens of microseconds each on a VM). For a client with one worker whose
/// connection serves that task alone (the trade engine's commit lane). A job handed to it after the client shut
/// down runs on Swift's pool.
public final class RedisWorkerExecutor: TaskExecutor {
    /// Weak: the client holds its executor.
    private struct Target {
        weak var client: RedisClient?
    }
    private let target = Mutex(Target())

    init() {}

    /// Set once, by the client's initializer.
    func attach(_ client: RedisClient) { target.withLock { $0.client = client } }

    /// Queues `job` behind the worker's jobs (it runs on the worker thread, in order).
    public func enqueue(_ job: consuming ExecutorJob) {
        let task = UnownedJob(job)
        guard let client = target.withLock({ $0.client }) else {
            globalConcurrentExecutor.enqueue(ExecutorJob(task))
            return
        }
        client.enqueue(RedisClient.Job(body: { _ in {} }, fail: { _ in }, task: task))
    }
}
