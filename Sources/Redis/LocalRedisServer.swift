import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A `redis-server` process run by Bitten itself: the managed Redis of `bitten up` and the
/// throw-away servers of the tests. Spawned with `posix_spawn` and reaped with `waitpid`.
public final class LocalRedisServer: @unchecked Sendable {
    /// The port it listens on (127.0.0.1).
    public let port: Int
    /// Its process id.
    public let pid: pid_t
    /// Whether this process spawned it (and so must reap it), or adopted one left running.
    public let isChild: Bool
    private let lock = NSLock()
    private var exited = false

    /// `redis://127.0.0.1:PORT`.
    public var url: RedisURL { RedisURL(host: "127.0.0.1", port: port) }

    /// A TCP port on 127.0.0.1 that is free right now (bind port 0, read it back, release it).
    public static func freeLoopbackPort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return Int.random(in: 20_000...40_000) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { return Int.random(in: 20_000...40_000) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Finds `redis-server` on PATH (and in /usr/sbin, /usr/bin).
    public static func locateBinary() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin", "/usr/local/bin"] {
            let candidate = dir + "/redis-server"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Starts `redis-server` bound to 127.0.0.1:`port` with its data in `directory`, and waits until it
    /// answers PING.
    public init(
        port: Int, directory: String, appendOnly: Bool, logFile: String? = nil, startTimeout: Duration = .seconds(10),
        extraArguments: [String] = []
    ) throws(RedisError) {
        guard let binary = LocalRedisServer.locateBinary() else {
            throw RedisError(
                .connectionFailed,
                "redis-server not found on PATH: install the Debian package redis-server (apt-get install redis-server) or set BITTEN_REDIS_URL"
            )
        }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let args =
            [
                binary, "--port", String(port), "--bind", "127.0.0.1", "--dir", directory,
                "--appendonly", appendOnly ? "yes" : "no", "--appendfsync", "everysec", "--save", "",
                "--daemonize", "no", "--loglevel", "warning", "--logfile", logFile ?? "", "--protected-mode", "yes",
            ] + extraArguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        // The calling thread may block signals (dispatch workers do); the child must get SIGTERM.
        // Its own process group keeps a terminal's Ctrl-C away from it: bitten stops it itself.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptySet = sigset_t()
        sigemptyset(&emptySet)
        var defaultSet = sigset_t()
        sigemptyset(&defaultSet)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaultSet, signal) }
        posix_spawnattr_setsigmask(&attributes, &emptySet)
        posix_spawnattr_setsigdefault(&attributes, &defaultSet)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        var child: pid_t = 0
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for arg in cArgs { free(arg) } }
        let rc = posix_spawn(&child, binary, &actions, &attributes, &cArgs, environ)
        guard rc == 0 else {
            throw RedisError(.connectionFailed, "could not start \(binary): \(String(cString: strerror(rc)))")
        }
        self.port = port
        self.pid = child
        self.isChild = true
        let clock = ContinuousClock()
        let deadline = clock.now + startTimeout
        while clock.now < deadline {
            if !isRunning { throw RedisError(.connectionFailed, "redis-server exited at start (port \(port) in use?)") }
            if (try? RedisConnection(url: url, timeout: .milliseconds(200)).command(["PING"])) == .status("PONG") {
                return
            }
            usleep(20_000)
        }
        stop()
        throw RedisError(.connectionFailed, "redis-server on port \(port) did not answer PING within \(startTimeout)")
    }

    /// Adopts a redis-server that is already running (left by an earlier `bitten up`).
    public init(adoptingPID pid: pid_t, port: Int) {
        self.pid = pid
        self.port = port
        self.isChild = false
    }

    /// True while the process exists.
    public var isRunning: Bool {
        lock.withLock {
            if exited { return false }
            if isChild {
                var status: Int32 = 0
                let rc = waitpid(pid, &status, WNOHANG)
                if rc == pid || (rc < 0 && errno == ECHILD) { exited = true }
            } else if kill(pid, 0) != 0 && errno == ESRCH {
                exited = true
            }
            return !exited
        }
    }

    /// Sends SIGTERM (redis flushes its AOF and exits), waits up to `timeout`, then SIGKILL.
    public func stop(timeout: Duration = .seconds(5)) {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while isRunning && clock.now < deadline { usleep(5_000) }
        if isRunning {
            kill(pid, SIGKILL)
            while isRunning { usleep(5_000) }
        }
    }

    /// Sends SIGKILL without waiting for a clean shutdown (fault tests).
    public func kill9() {
        kill(pid, SIGKILL)
        while isRunning { usleep(5_000) }
    }
}
