import CZeroMQ

extension Socket {
    func setOption(_ option: Int32, _ value: Int32, name: String) throws(ZMQError) {
        var copy = value
        guard zmq_setsockopt(handle, option, &copy, MemoryLayout<Int32>.size) == 0 else {
            throw ZMQError.last("set \(name)=\(value)")
        }
    }

    func setOption64(_ option: Int32, _ value: Int64, name: String) throws(ZMQError) {
        var copy = value
        guard zmq_setsockopt(handle, option, &copy, MemoryLayout<Int64>.size) == 0 else {
            throw ZMQError.last("set \(name)=\(value)")
        }
    }

    func setOption(_ option: Int32, bytes: [UInt8], name: String) throws(ZMQError) {
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw ZMQError.last("set \(name)") }
    }

    func intOption(_ option: Int32) throws(ZMQError) -> Int32 {
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        guard zmq_getsockopt(handle, option, &value, &size) == 0 else { throw ZMQError.last("getsockopt \(option)") }
        return value
    }

    /// How long unsent messages are kept after close (`ZMQ_LINGER`).
    public func setLinger(_ linger: Duration) throws(ZMQError) {
        try setOption(ZMQ_LINGER, Int32(linger.milliseconds), name: "ZMQ_LINGER")
    }

    /// The send high-water mark in messages (`ZMQ_SNDHWM`).
    public func setSendHighWaterMark(_ messages: Int) throws(ZMQError) {
        try setOption(ZMQ_SNDHWM, Int32(messages), name: "ZMQ_SNDHWM")
    }

    /// The receive high-water mark in messages (`ZMQ_RCVHWM`).
    public func setReceiveHighWaterMark(_ messages: Int) throws(ZMQError) {
        try setOption(ZMQ_RCVHWM, Int32(messages), name: "ZMQ_RCVHWM")
    }

    /// The largest inbound message a peer may send; a larger one drops that peer's connection.
    public func setMaxMessageSize(_ bytes: Int) throws(ZMQError) {
        try setOption64(ZMQ_MAXMSGSIZE, Int64(bytes), name: "ZMQ_MAXMSGSIZE")
    }

    /// ROUTER only: make sends to unknown identities fail with `EHOSTUNREACH` instead of vanishing.
    public func setRouterMandatory(_ on: Bool) throws(ZMQError) {
        try setOption(ZMQ_ROUTER_MANDATORY, Int32(on ? 1 : 0), name: "ZMQ_ROUTER_MANDATORY")
    }

    /// ROUTER only: a new peer with an identity already in use takes it over.
    public func setRouterHandover(_ on: Bool) throws(ZMQError) {
        try setOption(ZMQ_ROUTER_HANDOVER, Int32(on ? 1 : 0), name: "ZMQ_ROUTER_HANDOVER")
    }

    /// The identity (routing id) this socket presents to a ROUTER peer.
    /// ZMTP heartbeats (libzmq ≥ 4.2): a PING every `interval`; a connection that sends nothing (no
    /// PONG, no message) for `timeout` is closed, so a dead peer's pipe goes away instead of lingering
    /// until TCP notices. Any traffic resets the timeout.
    public func setHeartbeat(interval: Duration, timeout: Duration) throws(ZMQError) {
        try setOption(ZMQ_HEARTBEAT_IVL, Int32(interval.milliseconds), name: "ZMQ_HEARTBEAT_IVL")
        try setOption(ZMQ_HEARTBEAT_TIMEOUT, Int32(timeout.milliseconds), name: "ZMQ_HEARTBEAT_TIMEOUT")
    }

    /// Kernel TCP keepalive on this socket's connections: probes after `idle` without traffic, every
    /// `interval`, `count` unanswered probes close the connection (whole seconds, at least 1). Unlike ZMTP
    /// heartbeats this costs libzmq nothing per connection.
    public func setTCPKeepalive(idle: Duration, interval: Duration, count: Int) throws(ZMQError) {
        try setOption(ZMQ_TCP_KEEPALIVE, 1, name: "ZMQ_TCP_KEEPALIVE")
        try setOption(ZMQ_TCP_KEEPALIVE_IDLE, Int32(max(1, idle.components.seconds)), name: "ZMQ_TCP_KEEPALIVE_IDLE")
        try setOption(
            ZMQ_TCP_KEEPALIVE_INTVL, Int32(max(1, interval.components.seconds)), name: "ZMQ_TCP_KEEPALIVE_INTVL")
        try setOption(ZMQ_TCP_KEEPALIVE_CNT, Int32(max(1, count)), name: "ZMQ_TCP_KEEPALIVE_CNT")
    }

    /// Sets the socket's identity (ZMQ_ROUTING_ID), before it connects.
    public func setIdentity(_ identity: [UInt8]) throws(ZMQError) {
        try setOption(ZMQ_ROUTING_ID, bytes: identity, name: "ZMQ_ROUTING_ID")
    }

    /// SUB only: receive messages whose first frame starts with `prefix` (empty = everything).
    public func subscribe(_ prefix: String = "") throws(ZMQError) {
        try setOption(ZMQ_SUBSCRIBE, bytes: Array(prefix.utf8), name: "ZMQ_SUBSCRIBE")
    }

    /// SUB only: stop receiving `prefix`.
    public func unsubscribe(_ prefix: String) throws(ZMQError) {
        try setOption(ZMQ_UNSUBSCRIBE, bytes: Array(prefix.utf8), name: "ZMQ_UNSUBSCRIBE")
    }

    /// Blocking receive timeout (`ZMQ_RCVTIMEO`); nil waits forever.
    public func setReceiveTimeout(_ timeout: Duration?) throws(ZMQError) {
        try setOption(ZMQ_RCVTIMEO, Int32(timeout?.milliseconds ?? -1), name: "ZMQ_RCVTIMEO")
    }

    /// Blocking send timeout (`ZMQ_SNDTIMEO`); nil waits forever.
    public func setSendTimeout(_ timeout: Duration?) throws(ZMQError) {
        try setOption(ZMQ_SNDTIMEO, Int32(timeout?.milliseconds ?? -1), name: "ZMQ_SNDTIMEO")
    }

    /// Queue messages only to completed connections (`ZMQ_IMMEDIATE`).
    public func setImmediate(_ on: Bool) throws(ZMQError) {
        try setOption(ZMQ_IMMEDIATE, Int32(on ? 1 : 0), name: "ZMQ_IMMEDIATE")
    }

    /// Makes this socket a CURVE server with the given Z85 secret key.
    public func setCurveServer(secretKey: String) throws(ZMQError) {
        try setOption(ZMQ_CURVE_SERVER, Int32(1), name: "ZMQ_CURVE_SERVER")
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(secretKey.utf8), name: "ZMQ_CURVE_SECRETKEY")
    }

    /// Makes this socket a CURVE client of the server with public key `serverKey`.
    public func setCurveClient(keys: CurveKeyPair, serverKey: String) throws(ZMQError) {
        try setOption(ZMQ_CURVE_SERVERKEY, bytes: Array(serverKey.utf8), name: "ZMQ_CURVE_SERVERKEY")
        try setOption(ZMQ_CURVE_PUBLICKEY, bytes: Array(keys.publicKey.utf8), name: "ZMQ_CURVE_PUBLICKEY")
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(keys.secretKey.utf8), name: "ZMQ_CURVE_SECRETKEY")
    }

    /// The ZAP domain sent to the authentication handler (the ZAP hook; see `ZAPHandler`).
    public func setZAPDomain(_ domain: String) throws(ZMQError) {
        try setOption(ZMQ_ZAP_DOMAIN, bytes: Array(domain.utf8), name: "ZMQ_ZAP_DOMAIN")
    }
}
