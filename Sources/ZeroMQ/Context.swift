import CZeroMQ
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A libzmq context. Thread-safe; every socket keeps its context alive, so the context is
/// terminated only after its last socket has closed.
public final class Context: Sendable {
    nonisolated(unsafe) let handle: UnsafeMutableRawPointer

    /// Creates a context.
    /// - Parameters:
    ///   - ioThreads: libzmq I/O threads.
    ///   - maxSockets: raises `ZMQ_MAX_SOCKETS` (the default 1023 is too few for the EA simulator).
    public init(ioThreads: Int = 1, maxSockets: Int = 1023) throws(ZMQError) {
        guard let ctx = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        handle = ctx
        if zmq_ctx_set(ctx, ZMQ_IO_THREADS, Int32(ioThreads)) != 0 {
            throw ZMQError.last("set ZMQ_IO_THREADS")
        }
        if maxSockets != 1023, zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, Int32(maxSockets)) != 0 {
            throw ZMQError.last("set ZMQ_MAX_SOCKETS=\(maxSockets)")
        }
    }

    deinit {
        // All sockets are closed (each holds a reference), so this returns promptly.
        _ = zmq_ctx_term(handle)
    }

    /// The libzmq version as `major.minor.patch`.
    public static var version: String {
        var major: Int32 = 0
        var minor: Int32 = 0
        var patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }

    /// Whether libzmq was built with a capability (e.g. `curve`).
    public static func has(_ capability: String) -> Bool { zmq_has(capability) != 0 }

    /// Raises the soft limit of open file descriptors to `wanted` (or the hard limit, if lower).
    /// Returns the limit now in force.
    @discardableResult
    public static func raiseFileDescriptorLimit(to wanted: UInt64 = 65_536) -> UInt64 {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        let target = min(wanted, UInt64(limit.rlim_max))
        if limit.rlim_cur < target {
            limit.rlim_cur = rlim_t(target)
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return UInt64(limit.rlim_cur)
    }
}
