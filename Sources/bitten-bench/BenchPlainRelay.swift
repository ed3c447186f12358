import CZeroMQ
import Foundation
import ZeroMQ

/// The reference the relay is measured against: the same relay written in plain libzmq — PUSH → PULL,
/// a forwarding thread that adds the topic frame and sends the received message on with `zmq_msg_send`
/// (no copy, no check), PUB → SUB — with the same payloads, high-water marks and loopback TCP, in the
/// bench process. Whatever the Bitten relay costs beyond it is checking, routing and bookkeeping.
enum PlainRelay {
    static func run(count: Int, payloads: [[UInt8]]) throws -> Double {
        guard let ctx = zmq_ctx_new() else { throw ZMQError(code: zmq_errno(), operation: "ctx") }
        zmq_ctx_set(ctx, ZMQ_IO_THREADS, 2)
        defer { zmq_ctx_term(ctx) }
        func socket(_ type: Int32, hwm option: Int32) -> UnsafeMutableRawPointer? {
            let s = zmq_socket(ctx, type)
            var linger: Int32 = 0
            var hwm: Int32 = 100_000
            zmq_setsockopt(s, ZMQ_LINGER, &linger, 4)
            zmq_setsockopt(s, option, &hwm, 4)
            return s
        }
        func endpoint(_ s: UnsafeMutableRawPointer?) -> String {
            var buffer = [CChar](repeating: 0, count: 256)
            var length = buffer.count
            zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, &buffer, &length)
            return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        let pull = socket(ZMQ_PULL, hwm: ZMQ_RCVHWM)
        let pub = socket(ZMQ_PUB, hwm: ZMQ_SNDHWM)
        guard zmq_bind(pull, "tcp://127.0.0.1:0") == 0, zmq_bind(pub, "tcp://127.0.0.1:0") == 0 else {
            throw ZMQError(code: zmq_errno(), operation: "bind")
        }
        let (input, output) = (endpoint(pull), endpoint(pub))
        let sub = socket(ZMQ_SUB, hwm: ZMQ_RCVHWM)
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0)
        var timeout: Int32 = 2000
        zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout, 4)
        zmq_connect(sub, output)
        Thread.sleep(forTimeInterval: 0.5)  // let the subscription reach the PUB

        // The forwarder: one thread owns PULL and PUB, as the market loop owns 5556 and 5560.
        let (pullBits, pubBits) = (UInt(bitPattern: pull), UInt(bitPattern: pub))
        let forwarder = Thread {
            let pull = UnsafeMutableRawPointer(bitPattern: pullBits)
            let pub = UnsafeMutableRawPointer(bitPattern: pubBits)
            let topic = Array("EURUSD".utf8)
            var message = zmq_msg_t()
            for _ in 0..<count {
                zmq_msg_init(&message)
                guard zmq_msg_recv(&message, pull, 0) >= 0 else {
                    zmq_msg_close(&message)
                    break
                }
                topic.withUnsafeBytes { _ = zmq_send(pub, $0.baseAddress, $0.count, ZMQ_SNDMORE) }
                if zmq_msg_send(&message, pub, 0) < 0 { zmq_msg_close(&message) }
            }
        }
        forwarder.start()
        let start = Date()
        let contextBits = UInt(bitPattern: ctx)
        let sender = Thread {
            let push = zmq_socket(UnsafeMutableRawPointer(bitPattern: contextBits), ZMQ_PUSH)
            var linger: Int32 = 30_000
            var hwm: Int32 = 100_000
            zmq_setsockopt(push, ZMQ_LINGER, &linger, 4)
            zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, 4)
            zmq_connect(push, input)
            for i in 0..<count {
                payloads[i % payloads.count].withUnsafeBytes { _ = zmq_send(push, $0.baseAddress, $0.count, 0) }
            }
            zmq_close(push)
        }
        sender.start()
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 1024)
        var last = start
        while received < count {
            // The topic (or a timeout: PUB dropped some).
            guard zmq_recv(sub, &buffer, buffer.count, 0) >= 0 else { break }
            var more: Int32 = 0
            var size = 4
            zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &size)
            if more != 0 { _ = zmq_recv(sub, &buffer, buffer.count, 0) }
            received += 1
            last = Date()
        }
        let elapsed = last.timeIntervalSince(start)
        zmq_close(sub)
        zmq_close(pub)
        zmq_close(pull)
        return Double(received) / max(elapsed, 0.001)
    }
}
