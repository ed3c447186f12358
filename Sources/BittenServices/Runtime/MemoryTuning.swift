import Foundation
import Logging

#if os(Linux)
/// glibc's `int mallopt(int param, int value)` (declared in <malloc.h>, which Glibc's module does not export).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

/// Allocator settings for a long-running server.
public enum MemoryTuning {
    /// glibc's `M_MMAP_THRESHOLD`.
    static let mmapThresholdParameter: Int32 = -3

    /// Gives allocations of at least `mmapThreshold` bytes their own mapping, so memory freed when EAs
    /// disconnect goes back to the system instead of staying as holes in the heap. Left alone when
    /// `mmapThreshold` is 0 or glibc's own `MALLOC_MMAP_THRESHOLD_` is set. Returns whether it applied.
    @discardableResult
    public static func apply(mmapThreshold: Int, logger: Logger) -> Bool {
        guard mmapThreshold > 0, ProcessInfo.processInfo.environment["MALLOC_MMAP_THRESHOLD_"] == nil else { return false }
        #if os(Linux)
        guard glibcMallopt(mmapThresholdParameter, Int32(clamping: mmapThreshold)) == 1 else {
            logger.warning("mallopt(M_MMAP_THRESHOLD) refused", metadata: ["bytes": "\(mmapThreshold)"])
            return false
        }
        return true
        #else
        return false
        #endif
    }
}
