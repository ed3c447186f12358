import BittenCore
import BittenServices
import Foundation
import Hummingbird

/// An API error rendered as `{"error":{"code":…,"message":…}}`.
public struct APIError: HTTPResponseError, Sendable {
    /// The HTTP status.
    public let status: HTTPResponse.Status
    /// A stable code (`bad_parameter`, `no_free_slot`, …).
    public let code: String
    /// What was wrong, for a person.
    public let message: String
    /// Extra response headers (`Allow` on a 405).
    public var headers: HTTPFields = [:]

    /// An error with its status, code and message.
    public init(_ status: HTTPResponse.Status, code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    /// The answer to a refused fire or close.
    init(_ refusal: FireRefusal) {
        self.init(HTTPResponse.Status(code: refusal.httpStatus), code: refusal.code.rawValue, refusal.message)
    }

    /// The answer to a refused signal.
    init(_ rejection: SignalRejection) {
        self.init(HTTPResponse.Status(code: rejection.httpStatus), code: rejection.code.rawValue, rejection.message)
    }

    /// The error's JSON body.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try JSONEncoder().encode(["error": ["code": code, "message": message]])
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension FireRefusal {
    /// The HTTP status of each refusal (the HTTP adapter's mapping; the domain only names the reason).
    var httpStatus: Int {
        switch code {
        case .badRequest, .stopLossWrongSide, .unknownInstrument, .sizing, .symbolNotAtBroker: 422
        case .signalNotFound, .userNotFound, .positionNotFound: 404
        case .signalExpired: 410
        case .eaOffline, .noFreeSlot, .sendFailed, .pendingSwitch: 409
        case .tradingHalted, .closeOnly, .dailyLossLimit, .drawdownLimit, .openRiskLimit, .exposureLimit,
            .tradesPerDayLimit, .lossStreakCooldown, .concentrationLimit:
            409
        case .storeUnavailable: 503
        }
    }
}

extension SignalRejection {
    /// The HTTP status of each rejection: a body of the document's shape that is not a signal is 422.
    var httpStatus: Int {
        switch code {
        case .invalid: 422
        case .duplicate: 409
        case .expired: 410
        case .storeUnavailable: 503
        }
    }
}

/// Bearer-token check in constant time (no early exit on the first differing byte).
enum BearerToken {
    static func matches(_ header: String, _ token: String) -> Bool {
        let prefix = "Bearer "
        guard header.hasPrefix(prefix) else { return false }
        let given = Array(header.utf8.dropFirst(prefix.utf8.count))
        let wanted = Array(token.utf8)
        var difference = UInt8(given.count == wanted.count ? 0 : 1)
        for index in 0..<wanted.count {
            difference |= wanted[index] ^ (index < given.count ? given[index] : 0)
        }
        return difference == 0
    }
}
