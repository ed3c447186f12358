import Foundation
import Redis

/// A loopback Redis Cluster (three primaries, one replica each) in a temporary directory, removed with it.
public final class TestCluster: @unchecked Sendable {
    /// The running cluster.
    public let cluster: LocalRedisCluster
    private let base: URL

    /// Starting six servers and joining them takes seconds of blocking waits: done on a thread of its own,
    /// never on the cooperative pool that the other suites' tasks run on.
    public static func start() async throws -> TestCluster {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("bitten-cluster-\(UUID().uuidString)")
        let path = base.path
        // Ports are picked free, but a test beside this one may take one before its server binds it: then
        // the cluster is started again on other ports (each attempt in a directory of its own).
        var attempt = 0
        while true {
            attempt += 1
            let directory = path + "/\(attempt)"
            do {
                let cluster = try await withCheckedThrowingContinuation { continuation in
                    Thread { continuation.resume(with: Result { try LocalRedisCluster(directory: directory) }) }.start()
                }
                return TestCluster(cluster: cluster, base: base)
            } catch let error as RedisError where attempt < 3 && error.message.contains("exited at start") {
                continue
            }
        }
    }

    private init(cluster: LocalRedisCluster, base: URL) {
        self.cluster = cluster
        self.base = base
    }

    deinit {
        cluster.stop()
        try? FileManager.default.removeItem(at: base)
    }
}
