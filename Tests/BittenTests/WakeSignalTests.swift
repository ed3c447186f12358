import BittenServices
import Foundation
import Testing

@Suite struct WakeSignalTests {
    @Test func signalBeforeWaitIsKept() async {
        let wake = WakeSignal()
        wake.signal()
        let start = ContinuousClock.now
        await wake.wait(timeout: .seconds(30))
        #expect(ContinuousClock.now - start < .seconds(10))
    }

    @Test func signalWakesAWaiter() async {
        let wake = WakeSignal()
        let waiter = Task { await wake.wait(timeout: .seconds(30)) }
        try? await Task.sleep(for: .milliseconds(50))
        let start = ContinuousClock.now
        wake.signal()
        await waiter.value
        #expect(ContinuousClock.now - start < .seconds(10))
    }

    /// The regression: once a wait timed out, later waits must still wait (a loop built on a
    /// cancelled AsyncStream iterator spun thousands of times a second).
    @Test func timedOutWaitsKeepWaiting() async {
        let wake = WakeSignal()
        var rounds = 0
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .milliseconds(500) {
            await wake.wait(timeout: .milliseconds(50))
            rounds += 1
        }
        #expect(rounds <= 12, "a 50 ms wait looped \(rounds) times in 0.5 s")
        #expect(rounds >= 1)
    }

    /// The wait is structured: cancelling the waiting task ends it at once (a wait that parked its
    /// time limit in a separate sleeping task returned only when that sleep ended).
    @Test func cancellingTheWaiterEndsTheWait() async {
        let wake = WakeSignal()
        let waiter = Task { await wake.wait(timeout: .seconds(30)) }
        try? await Task.sleep(for: .milliseconds(50))
        let start = ContinuousClock.now
        waiter.cancel()
        await waiter.value
        #expect(ContinuousClock.now - start < .seconds(5))
        // A signal after that is kept for the next wait.
        wake.signal()
        let again = ContinuousClock.now
        await wake.wait(timeout: .seconds(30))
        #expect(ContinuousClock.now - again < .seconds(5))
    }
}
