/// A small deterministic generator (SplitMix64): the simulator's price walks and the property tests
/// need repeatable randomness.
public struct SplitMix64: Sendable {
    /// The generator's state.
    public var state: UInt64
    /// A generator from `seed` (the same seed, the same numbers).
    public init(seed: UInt64) { state = seed }
    /// The next number.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A Double in [0, 1).
    public mutating func nextUnit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
