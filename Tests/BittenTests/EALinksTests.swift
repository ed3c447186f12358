import Testing

@testable import BittenServices

/// The gateway's table of command-channel connections (pure; the sockets are in ConnectionLinkTests
/// and the end-to-end trust tests).
@Suite("EA links")
struct EALinksTests {
    @Test func aLinkSilentLongerThanTheTimeoutIsTakenOutOnce() {
        var links = EALinks()
        links.opened(10, host: "127.0.0.1", port: 40001, at: 100)
        links.opened(11, host: "127.0.0.2", port: 40002, at: 100)
        links.delivered(10, uuid: "user_a", peerAddress: "127.0.0.1", at: 101)
        #expect(links.silent(longerThan: 45, at: 140).isEmpty)
        let silent = links.silent(longerThan: 45, at: 146)
        #expect(silent.map(\.fd) == [11] && silent.first?.link.host == "127.0.0.2" && silent.first?.link.port == 40002)
        #expect(
            links.silent(longerThan: 45, at: 500).isEmpty, "a link that delivered is never silent; a swept one is gone")
        #expect(links.links.keys.sorted() == [10])
    }

    /// Stale: a link that carried a node's messages and has been silent past the timeout (the gateway
    /// then drops it only if the node is heard on its other channels); never-spoken links are `silent`'s.
    @Test func aNodesLinkSilentPastTheTimeoutIsACandidate() {
        var links = EALinks()
        links.opened(10, host: "10.0.0.5", port: 50000, at: 0)
        links.delivered(10, uuid: "user_a", peerAddress: "10.0.0.5", at: 1)
        links.opened(11, host: "10.0.0.6", port: 50001, at: 0)
        links.delivered(11, uuid: "user_b", peerAddress: "10.0.0.6", at: 30)
        links.opened(12, host: "10.0.0.7", port: 50002, at: 0)  // never spoke: not stale
        #expect(links.stale(longerThan: 45, at: 46).isEmpty, "at the timeout exactly, not past it")
        #expect(links.stale(longerThan: 45, at: 47).map(\.fd) == [10])
        #expect(links.stale(longerThan: 45, at: 80).map(\.fd) == [10, 11])
        links.delivered(10, uuid: "user_a", peerAddress: "10.0.0.5", at: 79)
        #expect(links.stale(longerThan: 45, at: 80).map(\.fd) == [11], "a message makes it fresh again")
        #expect(links.links.count == 3, "candidates stay until the gateway forgets the ones it drops")
    }

    @Test func whenANodesLinkClosesTheSilentLinksOfItsHostAreReleased() {
        var links = EALinks()
        links.opened(10, host: "10.0.0.5", port: 50000, at: 0)
        links.delivered(10, uuid: "user_a", peerAddress: "10.0.0.5", at: 1)
        links.opened(12, host: "10.0.0.5", port: 50001, at: 5)  // the restart, stuck behind link 10
        links.opened(13, host: "10.0.0.9", port: 50002, at: 5)  // silent, another host
        links.opened(14, host: "10.0.0.5", port: 50003, at: 5)
        links.delivered(14, uuid: "user_b", peerAddress: "10.0.0.5", at: 6)  // delivering: never released
        #expect(links.uuids(from: "10.0.0.5") == ["user_a", "user_b"])
        #expect(links.link(of: "user_a")?.fd == 10)
        #expect(links.closed(10).map(\.fd) == [12])
        #expect(links.link(of: "user_a") == nil)
        // A link that never carried a node's message releases nothing; an unknown one neither.
        #expect(links.closed(13).isEmpty && links.closed(99).isEmpty)
    }

    @Test func aMessageOnALinkWhoseAcceptWasNotSeenStartsIt() {
        var links = EALinks()
        links.delivered(20, uuid: nil, peerAddress: "127.0.0.3", at: 7)
        links.delivered(20, uuid: "user_c", peerAddress: "127.0.0.3", at: 8)
        links.delivered(20, uuid: nil, peerAddress: "127.0.0.3", at: 9)
        #expect(
            links.links[20] == EALinks.Link(host: "127.0.0.3", port: nil, openedAt: 7, uuid: "user_c", lastMessageAt: 9)
        )
        // A new accept on a reused descriptor is a new link.
        links.opened(20, host: "127.0.0.4", port: 1, at: 10)
        #expect(links.links[20]?.uuid == nil && links.links[20]?.lastMessageAt == nil)
    }
}
