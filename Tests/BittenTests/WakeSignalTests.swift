import Foundation
import Testing

@testable import BittenServices

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

    /// Returns once `deadlines` keeps a limit (a waiter started in a task has got to its wait), or after 5 s.
    static func untilALimitIsKept(_ deadlines: WakeDeadlines) async {
        var waited = 0
        while deadlines.pending == 0, waited < 500 {
            try? await Task.sleep(for: .milliseconds(10))
            waited += 1
        }
    }

    /// A signal that comes before the time limit takes the limit out of the deadline thread's list (nothing is
    /// left to fire later).
    @Test func aSignalTakesItsTimeLimitOut() async {
        let deadlines = WakeDeadlines()
        let wake = WakeSignal(deadlines: deadlines)
        let waiter = Task { await wake.wait(timeout: .seconds(30)) }
        await Self.untilALimitIsKept(deadlines)
        #expect(deadlines.pending == 1)
        wake.signal()
        await waiter.value
        #expect(deadlines.pending == 0)
    }

    /// The deadline thread sleeps until the earliest limit: a limit earlier than the one it sleeps until wakes it.
    @Test func anEarlierLimitEndsItsWaitInTime() async {
        let deadlines = WakeDeadlines()
        let late = WakeSignal(deadlines: deadlines)
        let soon = WakeSignal(deadlines: deadlines)
        let long = Task { await late.wait(timeout: .seconds(60)) }
        await Self.untilALimitIsKept(deadlines)
        try? await Task.sleep(for: .milliseconds(50))
        let start = ContinuousClock.now
        await soon.wait(timeout: .milliseconds(100))
        let took = ContinuousClock.now - start
        #expect(took >= .milliseconds(90))
        #expect(took < .seconds(10), "a 100 ms limit ended after \(took): the thread slept on to the 60 s one")
        #expect(deadlines.pending == 1)
        late.signal()
        await long.value
        #expect(deadlines.pending == 0)
    }
}
