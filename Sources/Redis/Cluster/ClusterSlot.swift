/// Redis Cluster's key → hash slot mapping: CRC16 (XMODEM) of the key, or of its hash tag, modulo
/// 16 384 — the algorithm of the Redis Cluster specification, so that the client knows a key's primary
/// before it sends anything.
public enum ClusterSlot {
    /// Number of hash slots.
    public static let count = 16_384

    private static let table: [UInt16] = (0..<256).map { byte in
        var crc = UInt16(byte) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }

    /// CRC16-XMODEM (polynomial 0x1021, initial 0), as Redis computes it.
    public static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes { crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)] }
        return crc
    }

    /// The part of `key` that is hashed: what lies between the first `{` and the first `}` after it,
    /// when that is not empty; otherwise the whole key.
    public static func hashedPart(_ key: [UInt8]) -> ArraySlice<UInt8> {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        else { return key[...] }
        return key[(open + 1)..<close]
    }

    /// The hash slot of `key`.
    public static func of(_ key: [UInt8]) -> Int { Int(crc16(hashedPart(key)) & 0x3FFF) }

    /// The hash slot of `key` (UTF-8).
    public static func of(_ key: String) -> Int { of(Array(key.utf8)) }

    /// The one slot every key is in; nil without keys. Throws, naming the keys and their slots, when
    /// they span slots — a cluster would refuse the command with CROSSSLOT, so it is never sent.
    public static func common(_ keys: [[UInt8]], command: String) throws(RedisError) -> Int? {
        guard let first = keys.first else { return nil }
        let slot = of(first)
        let slots = keys.map(of)
        guard slots.allSatisfy({ $0 == slot }) else {
            let named = zip(keys, slots).map { "\(String(decoding: $0.0, as: UTF8.self)) (slot \($0.1))" }
            throw RedisError(
                .crossSlot,
                "\(command) touches keys in different cluster slots: \(named.joined(separator: ", ")); give them one {hash tag}"
            )
        }
        return slot
    }
}
