import Testing

/// The suites that start real `bitten` processes (with Redis, EA fleets and sockets). They run one
/// after another: side by side on a two-core machine, their timing checks (heartbeat timeouts,
/// relay receipts) starved each other.
@Suite("End to end, one suite at a time", .serialized)
enum EndToEnd {}
