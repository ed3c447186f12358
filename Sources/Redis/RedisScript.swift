/// A Lua script run with EVALSHA (and loaded with SCRIPT LOAD on first use or after a restart).
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String

    /// Wraps Lua source.
    public init(_ source: String) { self.source = source }
}
