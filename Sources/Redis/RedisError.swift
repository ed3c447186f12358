/// An error from the Redis client, with a code and a specific message.
public struct RedisError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of failure this is.
    public enum Code: String, Sendable {
        /// The server could not be reached.
        case connectionFailed
        /// The connection broke during a command (the server went away).
        case io
        /// The server answered with an error reply (`-ERR …`).
        case server
        /// The reply had an unexpected shape.
        case unexpectedReply
        /// The client is backing off after a failure; nothing was sent.
        case unavailable
        /// The client has shut down.
        case closed
        /// A `redis://` URL could not be parsed.
        case invalidURL
        /// A MULTI/EXEC transaction was aborted (EXEC returned nil).
        case transactionAborted
        /// A command's keys are in different cluster slots; it was not sent.
        case crossSlot
    }

    /// The kind of failure.
    public let code: Code
    /// Specific context (server message, host and port, offending URL part).
    public let message: String

    /// Makes an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// True for failures where the server may be back later (connection, I/O, back-off).
    public var isConnectionProblem: Bool { [.connectionFailed, .io, .unavailable].contains(code) }

    /// The code and the message.
    public var description: String { "redis \(code.rawValue): \(message)" }
}
