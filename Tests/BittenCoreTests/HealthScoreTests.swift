import Testing

@testable import BittenCore

@Suite("System health score")
struct HealthScoreTests {
    let perfect = HealthInputs(
        totalNodes: 10, onlineNodes: 10, freshNodes: 10, redisLatency: .milliseconds(1),
        servicesRunning: 5, servicesTotal: 5, recentAlerts: 0)

    @Test func perfectSystemScores100() {
        let health = HealthScore(perfect)
        #expect(health.score == 100)
        #expect(health.status == .healthy)
    }

    @Test func eachFactorWeighsAsDocumented() {
        var half = perfect
        half.onlineNodes = 5
        half.freshNodes = 5
        #expect(HealthScore(half).score == 85)  // 0.30 × 0.5 lost
        var noRedis = perfect
        noRedis.redisLatency = nil
        #expect(HealthScore(noRedis).score == 80)
        #expect(HealthScore(noRedis).status == .degraded)
        var slowRedis = perfect
        slowRedis.redisLatency = .milliseconds(52)  // halfway between 5 and 100 ms... (52-5)/95 ≈ 0.495
        #expect(HealthScore(slowRedis).score == 90)
        var alerts = perfect
        alerts.recentAlerts = 40
        #expect(HealthScore(alerts).score == 90)
        var stale = perfect
        stale.freshNodes = 0
        #expect(HealthScore(stale).score == 80)
    }

    @Test func emptySystemIsNotPenalisedForHavingNoNodes() {
        let empty = HealthInputs(
            totalNodes: 0, onlineNodes: 0, freshNodes: 0, redisLatency: .milliseconds(1),
            servicesRunning: 3, servicesTotal: 3, recentAlerts: 0)
        #expect(HealthScore(empty).score == 100)
    }

    @Test func everythingDownIsCritical() {
        let down = HealthInputs(
            totalNodes: 10, onlineNodes: 0, freshNodes: 0, redisLatency: nil, servicesRunning: 0,
            servicesTotal: 5, recentAlerts: 100)
        #expect(HealthScore(down).score == 20)  // freshness is 1 with no node online
        #expect(HealthScore(down).status == .critical)
    }
}
