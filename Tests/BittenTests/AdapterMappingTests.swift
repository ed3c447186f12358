import BittenCore
import Testing

@testable import BittenDashboard
@testable import BittenServices

/// What the adapters make of the domain's rules: the Redis scripts' transition table, the HTTP statuses.
@Suite("Adapters: fire transitions in Lua, refusals in HTTP")
struct AdapterMappingTests {
    @Test func luaTableListsExactlyTheAllowedMoves() {
        let lua = FireState.luaTable
        #expect(lua.contains(#"["sent"]={["filled"]=true,["rejected"]=true,["timed_out"]=true}"#))
        #expect(lua.contains(#"["filled"]={}"#))
        #expect(!lua.contains(#"["timed_out"]={["filled"]=true,["rejected"]=true,["sent"]"#))
        // Every move the domain allows is in the table, and nothing else.
        for state in FireState.allCases {
            for target in FireState.allCases {
                let row = lua.range(of: "[\"\(state.rawValue)\"]={")!
                let rest = lua[row.upperBound...]
                let body = rest[..<rest.firstIndex(of: "}")!]
                #expect(body.contains("[\"\(target.rawValue)\"]=true") == state.canMove(to: target), "\(state) → \(target)")
            }
        }
    }

    @Test func refusalsMapToHTTPStatuses() {
        #expect(FireRefusal(.signalNotFound, "").httpStatus == 404)
        #expect(FireRefusal(.signalExpired, "").httpStatus == 410)
        #expect(FireRefusal(.noFreeSlot, "").httpStatus == 409)
        #expect(FireRefusal(.stopLossWrongSide, "").httpStatus == 422)
        #expect(FireRefusal(.storeUnavailable, "").httpStatus == 503)
    }
}
