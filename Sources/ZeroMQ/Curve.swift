import CZeroMQ

/// A CURVE key pair in Z85 text form (40 characters each).
public struct CurveKeyPair: Sendable, Equatable {
    /// The public key, Z85-encoded.
    public let publicKey: String
    /// The secret key, Z85-encoded.
    public let secretKey: String

    /// Wraps existing Z85 keys.
    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// Generates a fresh key pair with `zmq_curve_keypair`.
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var pub = [CChar](repeating: 0, count: 41)
        var sec = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&pub, &sec) == 0 else { throw ZMQError.last("zmq_curve_keypair") }
        return CurveKeyPair(publicKey: cString(pub), secretKey: cString(sec))
    }

    /// Derives the public key of a Z85 secret key with `zmq_curve_public`.
    public static func publicKey(forSecret secret: String) throws(ZMQError) -> String {
        var pub = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&pub, secret) == 0 else { throw ZMQError.last("zmq_curve_public") }
        return cString(pub)
    }
}
