import Foundation
import Logging

#if os(Linux)
    // Declared in <malloc.h>, which Glibc's module does not export.
    /// glibc's `int mallopt(int param, int value)`.
    @_silgen_name("mallopt")
    private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
    /// glibc's `int malloc_trim(size_t pad)`.
    @_silgen_name("malloc_trim")
    private func glibcMallocTrim(_ pad: Int) -> Int32
#endif

/// Allocator settings and memory readings for a long-running server.
public enum MemoryTuning {
    /// glibc's `M_MMAP_THRESHOLD`.
    static let mmapThresholdParameter: Int32 = -3

    /// Gives allocations of at least `mmapThreshold` bytes their own mapping, so memory freed when EAs
    /// disconnect goes back to the system instead of staying as holes in the heap. Left alone when
    /// `mmapThreshold` is 0 or glibc's own `MALLOC_MMAP_THRESHOLD_` is set. Returns whether it applied.
    @discardableResult
    public static func apply(mmapThreshold: Int, logger: Logger) -> Bool {
        guard mmapThreshold > 0, ProcessInfo.processInfo.environment["MALLOC_MMAP_THRESHOLD_"] == nil else {
            return false
        }
        #if os(Linux)
            guard glibcMallopt(mmapThresholdParameter, Int32(clamping: mmapThreshold)) == 1 else {
                logger.warning("mallopt(M_MMAP_THRESHOLD) refused", metadata: ["bitten.bytes": "\(mmapThreshold)"])
                return false
            }
            return true
        #else
            return false
        #endif
    }

    /// Hands freed heap pages back to the system (glibc's `malloc_trim`).
    public static func releaseFreedMemory() {
        #if os(Linux)
            _ = glibcMallocTrim(0)
        #endif
    }

    /// Resident set size from /proc/self/statm.
    public static var residentBytes: Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
