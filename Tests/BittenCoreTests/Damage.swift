@testable import BittenCore

/// Random damage to a message, for the scanners' agreement tests: one to three byte flips, insertions of
/// JSON punctuation, deletions or cuts.
enum Damage {
    static let alphabet = Array(#"{}[]",:.-+eE0123456789 \nnulltrue"#.utf8) + [0x00, 0x7F, 0xE9, 0x5C]

    static func apply(to message: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        var bytes = message
        for _ in 0..<(Int(random.next() % 3) + 1) {
            let at = Int(random.next() % UInt64(bytes.count))
            switch random.next() % 4 {
            case 0: bytes[at] = alphabet[Int(random.next() % UInt64(alphabet.count))]
            case 1: bytes.insert(alphabet[Int(random.next() % UInt64(alphabet.count))], at: at)
            case 2: bytes.remove(at: at)
            default: bytes = Array(bytes[..<at])
            }
            if bytes.isEmpty { bytes = [0x7B] }
        }
        return bytes
    }
}
