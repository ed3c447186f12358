import Foundation
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// One thread of its own for work that must not compete with the fire path for the CPU: it runs at the lowest
/// scheduling priority (nice 19), so on a busy machine the kernel gives it the time the fire path leaves over, and
/// the shared pool's threads never wait behind it. For work that holds no lock the fire path needs (a low-priority
/// thread holding such a lock would make the fire path wait on it): the flight recorder's steps and their text.
public final class BackgroundThread: Sendable {
    private let pool: NIOThreadPool

    /// A started thread; `shutdown()` ends it.
    public init() {
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    deinit { pool.shutdownGracefully { _ in } }

    /// Runs `body` on the thread and returns what it gives.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive {
            Self.lowestPriority()
            return try body()
        }
    }

    /// Ends the thread once the work given to it is done.
    public func shutdown() async { try? await pool.shutdownGracefully() }

    /// The nice value of the calling thread (on Linux the nice value is per thread, and `who` 0 is the calling
    /// thread; 0 elsewhere).
    public static func currentNice() -> Int32 {
        #if os(Linux)
            errno = 0
            return getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        #else
            return 0
        #endif
    }

    private static func lowestPriority() {
        #if os(Linux)
            if currentNice() < 19 { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19) }
        #endif
    }
}
