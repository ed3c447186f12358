/// The arguments of one or more commands in a single byte buffer, with the offsets and lengths
/// hiredis's `…Argv` functions take. One copy per argument, three allocations per batch.
struct ArgumentBuffer {
    private(set) var storage: [UInt8] = []
    private var offsets: [Int] = []
    private var lengths: [Int] = []
    /// (first argument index, argument count) per command.
    private(set) var commands: [(Int, Int)] = []

    mutating func beginCommand() { commands.append((offsets.count, 0)) }

    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        offsets.append(storage.count)
        lengths.append(bytes.count)
        storage.append(contentsOf: bytes)
        commands[commands.count - 1].1 += 1
    }

    /// Calls `body` with argv (pointers into the buffer) and the lengths array.
    func withArgv<T>(_ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> T) -> T {
        // An empty buffer still needs a valid base pointer.
        let bytes = storage.isEmpty ? [0] : storage
        return bytes.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var argv: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
            if argv.isEmpty { argv = [nil] }
            let lengthsCopy = lengths.isEmpty ? [0] : lengths
            return argv.withUnsafeMutableBufferPointer { argvBuffer in
                lengthsCopy.withUnsafeBufferPointer { lengthBuffer in
                    body(argvBuffer.baseAddress!, lengthBuffer.baseAddress!)
                }
            }
        }
    }
}
