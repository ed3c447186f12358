/// The arguments of one or more commands in a single byte buffer, with the offsets and lengths
/// hiredis's `…Argv` functions take. One copy per argument, three allocations per batch; a buffer
/// that is `reset` and filled again reuses the memory of the last batch (see `RedisConnection`).
struct ArgumentBuffer {
    private(set) var storage: [UInt8] = []
    private var offsets: [Int] = []
    private var lengths: [Int] = []
    /// The argument pointers handed to hiredis (rebuilt by each `withArgv`, its memory kept).
    private var argv: [UnsafePointer<CChar>?] = []
    /// (first argument index, argument count) per command.
    private(set) var commands: [(Int, Int)] = []

    /// Bytes of arguments a reused buffer keeps its memory for; a batch with more bytes, or with more
    /// than `keptBytes / 8` arguments, gives its memory back after it (`reset`). With the offsets, lengths
    /// and pointers (8 bytes each per argument) a connection keeps about 16 MB at most, after a burst.
    static let keptBytes = 4 << 20

    mutating func beginCommand() { commands.append((offsets.count, 0)) }

    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        offsets.append(storage.count)
        lengths.append(bytes.count)
        storage.append(contentsOf: bytes)
        commands[commands.count - 1].1 += 1
    }

    /// Empties the buffer for the next batch, keeping its memory unless the last batch was larger
    /// than `keptBytes`.
    mutating func reset() {
        if storage.capacity > Self.keptBytes || offsets.capacity > Self.keptBytes / 8 {
            self = ArgumentBuffer()
            return
        }
        storage.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        lengths.removeAll(keepingCapacity: true)
        argv.removeAll(keepingCapacity: true)
        commands.removeAll(keepingCapacity: true)
    }

    /// Calls `body` with argv (pointers into the buffer) and the lengths array.
    mutating func withArgv<T>(_ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> T) -> T {
        // An empty buffer still needs a valid base pointer.
        if storage.isEmpty { storage.append(0) }
        if lengths.isEmpty { lengths.append(0) }
        argv.removeAll(keepingCapacity: true)
        let offsets = self.offsets
        let lengths = self.lengths
        return storage.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            argv.reserveCapacity(Swift.max(1, offsets.count))
            for offset in offsets { argv.append(base + offset) }
            if argv.isEmpty { argv.append(nil) }
            return argv.withUnsafeMutableBufferPointer { argvBuffer in
                lengths.withUnsafeBufferPointer { lengthBuffer in
                    body(argvBuffer.baseAddress!, lengthBuffer.baseAddress!)
                }
            }
        }
    }
}
