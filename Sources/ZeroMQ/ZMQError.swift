import CZeroMQ

/// An error from libzmq: the errno it reported and its own message.
public struct ZMQError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The errno value libzmq reported.
    public let code: Int32
    /// libzmq's text for `code` (`zmq_strerror`).
    public let message: String
    /// What the wrapper was doing (e.g. `bind tcp://*:5555`).
    public let operation: String

    /// Makes an error from an explicit code.
    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
        self.message = String(cString: zmq_strerror(code))
    }

    /// Captures the calling thread's `zmq_errno()`.
    static func last(_ operation: String) -> ZMQError {
        ZMQError(code: zmq_errno(), operation: operation)
    }

    /// True when the send or receive would have blocked (`EAGAIN`).
    public var wouldBlock: Bool { code == EAGAIN }
    /// True when a ROUTER_MANDATORY send named an identity that is not connected (`EHOSTUNREACH`).
    public var hostUnreachable: Bool { code == EHOSTUNREACH }

    /// The operation, libzmq's message and the errno.
    public var description: String { "\(operation): \(message) (errno \(code))" }
}

/// Decodes a NUL-terminated C buffer.
func cString(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
