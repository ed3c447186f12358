import CZeroMQ

/// The ZeroMQ socket patterns Bitten uses.
public enum SocketType: String, Sendable, CaseIterable {
    case pair, router, dealer, pub, sub, push, pull, req, rep

    var raw: Int32 {
        switch self {
        case .pair: ZMQ_PAIR
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .push: ZMQ_PUSH
        case .pull: ZMQ_PULL
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        }
    }

    /// Decodes the value of `ZMQ_TYPE`.
    public init?(raw: Int32) {
        guard let match = SocketType.allCases.first(where: { $0.raw == raw }) else { return nil }
        self = match
    }
}
