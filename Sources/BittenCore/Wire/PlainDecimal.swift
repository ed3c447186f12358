/// Formats numbers the way the EA's naive parser can read them: plain decimal, no exponent.
public enum PlainDecimal {
    /// `value` with at most `digits` fraction digits, trailing zeros trimmed (`1.0852`, `0.35`, `12`).
    /// Returns nil for non-finite values or values too large to print exactly.
    ///
    /// On the hot paths (every fire, node flush and confirmation formats several numbers), so the
    /// digits are written into a stack buffer instead of building and trimming intermediate strings.
    public static func format(_ value: Double, maxFractionDigits digits: Int = 8) -> String? {
        guard value.isFinite else { return nil }
        let magnitude = value.magnitude
        var fractionDigits = min(max(digits, 0), 12)
        while fractionDigits > 0 && magnitude * powers[fractionDigits] >= 9.0e18 { fractionDigits -= 1 }
        let scale = powers[fractionDigits]
        guard magnitude * scale < 9.0e18 else { return nil }
        let scaled = Int64((magnitude * scale).rounded())
        let negative = value < 0 && scaled != 0
        let unit = Int64(scale)
        var whole = scaled / unit
        var fraction = scaled % unit
        // Trailing zeros of the fraction are not printed (a zero fraction not at all).
        while fractionDigits > 0 && fraction % 10 == 0 {
            fraction /= 10
            fractionDigits -= 1
        }
        // At most a sign, 19 whole digits, the point and 12 fraction digits.
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 40) { buffer in
            var start = buffer.count
            for _ in 0..<fractionDigits {
                start -= 1
                buffer[start] = UInt8(ascii: "0") + UInt8(fraction % 10)
                fraction /= 10
            }
            if fractionDigits > 0 {
                start -= 1
                buffer[start] = UInt8(ascii: ".")
            }
            repeat {
                start -= 1
                buffer[start] = UInt8(ascii: "0") + UInt8(whole % 10)
                whole /= 10
            } while whole > 0
            if negative {
                start -= 1
                buffer[start] = UInt8(ascii: "-")
            }
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[start...]), as: UTF8.self)
        }
    }

    /// 10^0 … 10^12 (each exact in a Double).
    private static let powers: [Double] = (0...12).map { n in
        var result = 1.0
        for _ in 0..<n { result *= 10 }
        return result
    }

    /// `value` (not negative) in decimal, zero-padded to at least `width` digits: `String(format: "%06d")` without
    /// Foundation's formatter (about a microsecond each), for ids and dates made per fire and per close.
    public static func padded(_ value: Int, width: Int) -> String {
        precondition(value >= 0, "padded takes a value that is not negative")
        var digits: [UInt8] = []
        digits.reserveCapacity(max(width, 20))
        var rest = value
        repeat {
            digits.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        } while rest > 0
        while digits.count < width { digits.append(UInt8(ascii: "0")) }
        return String(decoding: digits.reversed(), as: UTF8.self)
    }
}
