import Foundation
import Testing

@testable import BittenServices

/// The spool and journal file format: length-prefixed records, earlier JSON lines still read, torn writes skipped.
@Suite struct ConfirmationSpoolTests {
    static let awkward: [[String]] = [
        [
            "bitten", "1733000000000001", "type", "confirmation", "payload",
            #"{"message":"Trade executed \"ok\"","lot":0.1}"#,
        ],
        ["bitten", "1733000000000002", "note", "line one\nline two\r\n\t", "empty", ""],
        ["bitten", "1733000000000003", "text", "Café – €5 ✓", "digits", "12:34:56", "hash", "#7:seven"],
        [],
    ]

    @Test func recordsRoundTripEveryCharacter() {
        let bytes = ConfirmationSpool.lines(Self.awkward)
        #expect(bytes.first == UInt8(ascii: "#"))
        #expect(ConfirmationSpool.parse(bytes) == Self.awkward)
    }

    @Test func lengthPrefixesAreDecimalAtEveryDigitCount() {
        // Items of 0 to 100 000 bytes: each prefix is its byte count in decimal, whatever its number of digits.
        let sizes = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1_000, 9_999, 10_000, 100_000]
        let entry = sizes.map { String(repeating: "é", count: $0 / 2) + String(repeating: "x", count: $0 % 2) }
        let bytes = ConfirmationSpool.lines([entry])
        var expected: [UInt8] = [UInt8(ascii: "#")]
        for item in entry { expected += Array("\(item.utf8.count):\(item)".utf8) }
        expected.append(10)
        #expect(bytes == expected)
        #expect(ConfirmationSpool.parse(bytes) == [entry])
    }

    @Test func aTornLastRecordIsSkippedAndTheRestKept() {
        let whole = ConfirmationSpool.lines(Array(Self.awkward.prefix(3)))
        let last = ConfirmationSpool.lines([Self.awkward[2]])
        // Every cut inside the last record: the first two survive, the torn third is dropped.
        for cut in 1..<last.count {
            let torn = Array(whole.prefix(whole.count - last.count + cut))
            #expect(ConfirmationSpool.parse(torn) == Array(Self.awkward.prefix(2)), "cut after \(cut) bytes")
        }
    }

    @Test func jsonLinesOfEarlierVersionsAndGarbageLines() throws {
        let json = try JSONSerialization.data(withJSONObject: Self.awkward[0])
        var bytes = Array(json) + [10]
        bytes += Array("garbage that is neither\n".utf8)
        bytes += ConfirmationSpool.lines([Self.awkward[1]])
        bytes += Array(#"["torn json"#.utf8) + [10]
        bytes += Array("#x:abc\n".utf8)  // not a length: unreadable, skipped
        bytes += ConfirmationSpool.lines([Self.awkward[2]])
        #expect(ConfirmationSpool.parse(bytes) == [Self.awkward[0], Self.awkward[1], Self.awkward[2]])
    }

    @Test func aRecordTornByACrashIsCutOffBeforeTheNextAppend() throws {
        let directory = NSTemporaryDirectory() + "bitten-spool-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/confirmations.spool"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let whole = ConfirmationSpool.lines([Self.awkward[0], Self.awkward[1]])
        let second = ConfirmationSpool.lines([Self.awkward[1]]).count
        // The second record (with newlines inside) was being written when the process died, at any byte.
        for cut in 1..<second {
            try Data(whole.prefix(whole.count - second + cut)).write(to: URL(fileURLWithPath: path))
            let spool = try ConfirmationSpool(directory: directory)
            #expect(spool.count == 1, "cut after \(cut) bytes")
            try spool.append([Self.awkward[2]])
            #expect(try spool.entries() == [Self.awkward[0], Self.awkward[2]], "cut after \(cut) bytes")
        }
    }

    @Test func appendsOfEverySizeAfterOneAnotherKeepOnlyTheirOwnRecords() throws {
        // The append buffer is kept between appends (up to `keptBuffer`): a smaller batch after a larger one, and
        // one past the kept size, write their own records and nothing of the one before.
        let directory = NSTemporaryDirectory() + "bitten-spool-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let spool = try ConfirmationSpool(directory: directory, name: "confirmations.journal", sync: false)
        let large = (0..<300).map { ["bitten", String($0), "payload", String(repeating: "x", count: 1_000)] }
        let huge = [["bitten", "300", "payload", String(repeating: "y", count: ConfirmationSpool.keptBuffer + 1)]]
        let batches = [large, [Self.awkward[1]], huge, [Self.awkward[2]], Array(large.prefix(2))]
        for batch in batches { try spool.append(batch) }
        #expect(try spool.entries() == batches.flatMap { $0 })
        #expect(spool.count == batches.reduce(0) { $0 + $1.count })
    }

    @Test func appendReplaceAndClearOnDisk() throws {
        let directory = NSTemporaryDirectory() + "bitten-spool-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let spool = try ConfirmationSpool(directory: directory)
        try spool.append(Array(Self.awkward.prefix(2)))
        try spool.append([Self.awkward[2]])
        #expect(spool.count == 3)
        #expect(try spool.entries() == Array(Self.awkward.prefix(3)))
        // A second instance on the same file counts what is there.
        #expect(try ConfirmationSpool(directory: directory).count == 3)
        try spool.replace(with: [Self.awkward[1]])
        #expect(try spool.entries() == [Self.awkward[1]])
        try spool.clear()
        #expect(spool.count == 0)
        #expect(try spool.entries().isEmpty)
    }
}
