import BittenCore
import Foundation
import Synchronization

/// The append-only file where accepted confirmations wait while Redis is unreachable
/// (`$BITTEN_DATA_DIR/spool/confirmations.spool`, one JSON array per line, fsync'd per batch).
/// It is replayed in order when Redis is back and then truncated. A replay that is interrupted (a
/// crash) starts again from the top: the append script recognises entries it already took.
///
/// The same format serves as the journal (`confirmations.journal`, not fsync'd): every accepted entry is
/// written there before it waits in memory for the ledger, so a process that dies (SIGKILL, a crash) loses
/// nothing it accepted; the next start moves the journal into the spool.
public final class ConfirmationSpool: Sendable {
    public let path: String
    private let sync: Bool
    private let state = Mutex<Int>(0)  // lines in the file

    public init(directory: String, name: String = "confirmations.spool", sync: Bool = true) throws {
        self.sync = sync
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = (directory as NSString).appendingPathComponent(name)
        if !FileManager.default.fileExists(atPath: path) {
            FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        let existing = (try? Self.read(path).count) ?? 0
        state.withLock { $0 = existing }
    }

    /// Entries waiting in the file.
    public var count: Int { state.withLock { $0 } }

    /// Appends entries (and fsyncs once, unless this is a journal).
    public func append(_ entries: [[String]]) throws {
        guard !entries.isEmpty else { return }
        let data = Self.lines(entries)
        try state.withLock { count in
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o600)
            guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
            defer { close(fd) }
            let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == data.count, !sync || fsync(fd) == 0 else { throw CocoaError(.fileWriteUnknown) }
            count += entries.count
        }
    }

    /// Every entry in the file, oldest first. A torn last line (a crash in the middle of a write) is skipped.
    public func entries() throws -> [[String]] { try Self.read(path) }

    /// Empties the file after a complete replay.
    public func clear() throws {
        try state.withLock { count in
            let fd = open(path, O_WRONLY | O_TRUNC)
            guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
            fsync(fd)
            close(fd)
            count = 0
        }
    }

    /// Replaces the whole file with `entries` (written beside it, fsync'd, then renamed over it).
    public func replace(with entries: [[String]]) throws {
        let data = Self.lines(entries)
        try state.withLock { count in
            let temporary = path + ".new"
            let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
            let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            let synced = fsync(fd) == 0
            close(fd)
            guard written == data.count, synced, rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
            count = entries.count
        }
    }

    /// One JSON array of strings per line.
    static func lines(_ entries: [[String]]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.count * 600)
        for entry in entries {
            JSONValue.appendArray(entry, to: &bytes)
            bytes.append(10)
        }
        return bytes
    }

    static func read(_ path: String) throws -> [[String]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return data.split(separator: 10).compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line))) as? [String]
        }
    }
}
