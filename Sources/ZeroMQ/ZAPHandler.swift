import CZeroMQ

/// One ZAP authentication request (RFC 27) from libzmq.
public struct ZAPRequest: Sendable, Equatable {
    /// The request id, echoed in the reply.
    public let requestID: [UInt8]
    /// The ZAP domain of the socket.
    public let domain: String
    /// The peer's IP address.
    public let address: String
    /// `NULL`, `PLAIN` or `CURVE`.
    public let mechanism: String
    /// The client's CURVE public key (32 bytes) when the mechanism is CURVE.
    public let credentials: [UInt8]

    /// The CURVE public key in Z85 text (40 characters), if the mechanism is CURVE.
    public var curvePublicKey: String? {
        guard mechanism == "CURVE", credentials.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&text, credentials, 32) != nil else { return nil }
        return cString(text)
    }
}

/// The ZAP hook: a REP socket on `inproc://zeromq.zap.01` in the same context as the server
/// sockets. libzmq asks it about every new CURVE (or other authenticated) connection; `authorize`
/// decides. It must be opened before the sockets it guards accept connections.
public final class ZAPHandler: Sendable {
    private let socket: LoopSocket
    private let authorize: @Sendable (ZAPRequest) -> Bool

    /// Binds the ZAP endpoint on `loop`.
    public init(loop: SocketLoop, authorize: @escaping @Sendable (ZAPRequest) -> Bool) async throws {
        socket = try await loop.open(.rep) { try $0.bind("inproc://zeromq.zap.01") }
        self.authorize = authorize
    }

    /// Answers requests until the socket closes.
    public func serve() async {
        for await batch in socket.messages {
            for message in batch {
                let reply = Self.answer(message, authorize)
                try? await socket.send(reply)
            }
        }
    }

    /// Closes the ZAP endpoint.
    public func close() { socket.close() }

    static func answer(_ message: Message, _ authorize: (ZAPRequest) -> Bool) -> Message {
        let f = message.frames
        guard f.count >= 6, String(decoding: f[0], as: UTF8.self) == "1.0" else {
            return Message([
                Array("1.0".utf8), f.count > 1 ? f[1] : [], Array("500".utf8), Array("malformed ZAP request".utf8), [],
                [],
            ])
        }
        let request = ZAPRequest(
            requestID: f[1], domain: String(decoding: f[2], as: UTF8.self),
            address: String(decoding: f[3], as: UTF8.self),
            mechanism: String(decoding: f[5], as: UTF8.self), credentials: f.count > 6 ? f[6] : [])
        let allowed = authorize(request)
        return Message([
            Array("1.0".utf8), request.requestID, Array((allowed ? "200" : "400").utf8),
            Array((allowed ? "OK" : "key not allowed").utf8),
            Array((allowed ? (request.curvePublicKey ?? "") : "").utf8), [],
        ])
    }
}
