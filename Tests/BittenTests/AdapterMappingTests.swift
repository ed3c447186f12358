import BittenCore
import Testing

@testable import BittenDashboard
@testable import BittenServices

/// What the HTTP adapter makes of the domain's refusals.
@Suite("Adapters: refusals in HTTP")
struct AdapterMappingTests {
    @Test func refusalsMapToHTTPStatuses() {
        #expect(FireRefusal(.signalNotFound, "").httpStatus == 404)
        #expect(FireRefusal(.signalExpired, "").httpStatus == 410)
        #expect(FireRefusal(.noFreeSlot, "").httpStatus == 409)
        #expect(FireRefusal(.stopLossWrongSide, "").httpStatus == 422)
        #expect(FireRefusal(.storeUnavailable, "").httpStatus == 503)
    }
}
