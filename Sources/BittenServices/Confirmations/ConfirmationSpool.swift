import BittenCore
import Foundation
import Synchronization

/// The append-only file where accepted confirmations wait while Redis is unreachable
/// (`$BITTEN_DATA_DIR/spool/confirmations.spool`, fsync'd per batch). One record per entry: `#`, then each
/// string as its UTF-8 length, `:` and its bytes (`#6:bitten16:17330…`), then a newline; copying bytes,
/// no escaping. Files of earlier versions (one JSON array of strings per line) are read too.
/// It is replayed in order when Redis is back and then truncated. A replay that is interrupted (a
/// crash) starts again from the top: the append script recognises entries it already took.
///
/// The same format serves as the journal (`confirmations.journal`, not fsync'd): every accepted entry is
/// written there before it waits in memory for the ledger, so a process that dies (SIGKILL, a crash) loses
/// nothing it accepted; the next start moves the journal into the spool.
public final class ConfirmationSpool: Sendable {
    /// The spool file.
    public let path: String
    private let sync: Bool
    /// Entries in the file, the file kept open for appending (-1: not open), and the bytes of the last append
    /// (kept for the next one: a batch's records are a large allocation, which this process maps and unmaps
    /// each time, page faults and all, unless it is kept).
    private let state = Mutex<(count: Int, fd: Int32, buffer: [UInt8])>((0, -1, []))
    /// The most bytes the kept buffer holds on to between appends.
    static let keptBuffer = 4 << 20

    /// A spool file in `directory`; `sync` fsyncs every append.
    public init(directory: String, name: String = "confirmations.spool", sync: Bool = true) throws {
        self.sync = sync
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = (directory as NSString).appendingPathComponent(name)
        if !FileManager.default.fileExists(atPath: path) {
            FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        // A record torn by a crash in the middle of a write is cut off, so that what is appended next starts
        // a record of its own (a length prefix would otherwise run into it).
        var existing = 0
        if let bytes = try? Array(Data(contentsOf: URL(fileURLWithPath: path))) {
            let (entries, end) = Self.parseRecords(bytes)
            existing = entries.count
            if end < bytes.count { _ = truncate(path, off_t(end)) }
        }
        state.withLock { $0.count = existing }
    }

    deinit {
        let fd = state.withLock { $0.fd }
        if fd >= 0 { close(fd) }
    }

    /// Entries waiting in the file.
    public var count: Int { state.withLock { $0.count } }

    /// Appends entries (and fsyncs once, unless this is a journal). The file stays open between appends; a
    /// write that does not go through whole is cut back off, so the file never holds half a record.
    public func append(_ entries: [[String]]) throws {
        guard !entries.isEmpty else { return }
        try state.withLock { state in
            if state.fd < 0 {
                state.fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
                guard state.fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
            }
            state.buffer.removeAll(keepingCapacity: true)
            Self.appendLines(entries, to: &state.buffer)
            defer { if state.buffer.capacity > Self.keptBuffer { state.buffer = [] } }
            let before = lseek(state.fd, 0, SEEK_END)
            let written = state.buffer.withUnsafeBytes { write(state.fd, $0.baseAddress, $0.count) }
            guard written == state.buffer.count, !sync || fsync(state.fd) == 0 else {
                if before >= 0 { _ = ftruncate(state.fd, before) }
                throw CocoaError(.fileWriteUnknown)
            }
            state.count += entries.count
        }
    }

    /// Every entry in the file, oldest first. A torn last record (a crash in the middle of a write) is skipped.
    public func entries() throws -> [[String]] { try Self.read(path) }

    /// Empties the file after a complete replay.
    public func clear() throws {
        try state.withLock { state in
            if state.fd < 0 {
                state.fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
                guard state.fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
            }
            guard ftruncate(state.fd, 0) == 0 else { throw CocoaError(.fileWriteUnknown) }
            // A journal is not synced on append either: emptying it needs no disk flush (one per drained batch).
            if sync { fsync(state.fd) }
            state.count = 0
        }
    }

    /// Replaces the whole file with `entries` (written beside it, fsync'd, then renamed over it).
    public func replace(with entries: [[String]]) throws {
        let data = Self.lines(entries)
        try state.withLock { state in
            let temporary = path + ".new"
            let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
            let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            let synced = fsync(fd) == 0
            close(fd)
            guard written == data.count, synced, rename(temporary, path) == 0 else {
                throw CocoaError(.fileWriteUnknown)
            }
            // The file open for appending is the old one: the next append opens the new one.
            if state.fd >= 0 { close(state.fd) }
            state.fd = -1
            state.count = entries.count
        }
    }

    /// The records of `entries`, one after the other.
    static func lines(_ entries: [[String]]) -> [UInt8] {
        var bytes: [UInt8] = []
        appendLines(entries, to: &bytes)
        return bytes
    }

    /// The records of `entries` after what `bytes` holds.
    static func appendLines(_ entries: [[String]], to bytes: inout [UInt8]) {
        var capacity = bytes.count
        for entry in entries {
            capacity += 2
            for item in entry { capacity += item.utf8.count + 8 }
        }
        bytes.reserveCapacity(capacity)
        for entry in entries {
            bytes.append(0x23)  // #
            for item in entry {
                var item = item
                item.withUTF8 { utf8 in
                    appendDecimal(utf8.count, to: &bytes)
                    bytes.append(0x3A)  // :
                    bytes.append(contentsOf: utf8)
                }
            }
            bytes.append(10)
        }
    }

    /// `value` (not negative) in decimal digits, with no `String` made for it (a journal line has one per item, and
    /// every accepted confirmation is journaled).
    static func appendDecimal(_ value: Int, to bytes: inout [UInt8]) {
        if value < 10 {
            bytes.append(0x30 &+ UInt8(truncatingIfNeeded: value))
            return
        }
        var divisor = 10
        while value / divisor >= 10 { divisor &*= 10 }
        var rest = value
        while divisor > 0 {
            bytes.append(0x30 &+ UInt8(truncatingIfNeeded: rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    static func read(_ path: String) throws -> [[String]] {
        try parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    /// The entries of a file's bytes, oldest first: records, and the JSON lines of earlier versions. A torn
    /// last record (a crash in the middle of a write) is left out; an unreadable line is skipped.
    static func parse(_ bytes: [UInt8]) -> [[String]] { parseRecords(bytes).entries }

    /// The entries, and where the last complete record or line ends.
    static func parseRecords(_ bytes: [UInt8]) -> (entries: [[String]], end: Int) {
        var entries: [[String]] = []
        var end = 0
        var index = 0
        func skipLine() {
            while index < bytes.count, bytes[index] != 10 { index += 1 }
            index += 1
        }
        records: while index < bytes.count {
            switch bytes[index] {
            case 0x23:
                let start = index
                index += 1
                var entry: [String] = []
                while true {
                    // The file ends inside the record: torn by a crash while it was written.
                    guard index < bytes.count else { break records }
                    if bytes[index] == 10 {
                        index += 1
                        entries.append(entry)
                        break
                    }
                    var length = 0
                    var digits = 0
                    while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39, digits < 10 {
                        length = length * 10 + Int(bytes[index] - 0x30)
                        index += 1
                        digits += 1
                    }
                    guard index < bytes.count, index + 1 + length <= bytes.count else { break records }
                    guard digits > 0, bytes[index] == 0x3A else {
                        // Not a record after all: skipped to the next newline.
                        index = start + 1
                        skipLine()
                        break
                    }
                    entry.append(String(decoding: bytes[(index + 1)..<(index + 1 + length)], as: UTF8.self))
                    index += 1 + length
                }
            case 0x5B:
                let start = index
                skipLine()
                let line = Data(bytes[start..<min(index, bytes.count)])
                if let entry = (try? JSONSerialization.jsonObject(with: line)) as? [String] { entries.append(entry) }
            default:
                skipLine()
            }
            // Only what ends with its newline is complete.
            if index <= bytes.count, index > 0, bytes[index - 1] == 10 { end = index }
        }
        return (entries, end)
    }
}
