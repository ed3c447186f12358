import Testing

@testable import BittenServices

/// The low-priority thread the flight recorder makes its steps on: work runs there, at nice 19, off the caller's
/// thread, and gives back its value or its error.
@Suite("Background thread")
struct BackgroundThreadTests {
    struct Refused: Error {}

    @Test func workRunsAtTheLowestPriorityAndGivesItsResult() async throws {
        let thread = BackgroundThread()
        let here = BackgroundThread.currentNice()
        let (nice, value) = try await thread.run { (BackgroundThread.currentNice(), 6 * 7) }
        #expect(value == 42)
        #expect(nice == 19, "the work ran at nice \(nice)")
        #expect(BackgroundThread.currentNice() == here, "the caller's thread keeps its priority")
        await #expect(throws: Refused.self) { try await thread.run { () throws -> Int in throw Refused() } }
        await thread.shutdown()
        await #expect(throws: (any Error).self) { try await thread.run { 1 } }
    }
}
