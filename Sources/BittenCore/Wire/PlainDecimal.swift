/// Formats numbers the way the EA's naive parser can read them: plain decimal, no exponent.
public enum PlainDecimal {
    /// `value` with at most `digits` fraction digits, trailing zeros trimmed (`1.0852`, `0.35`, `12`).
    /// Returns nil for non-finite values or values too large to print exactly.
    public static func format(_ value: Double, maxFractionDigits digits: Int = 8) -> String? {
        guard value.isFinite else { return nil }
        var fractionDigits = min(max(digits, 0), 12)
        while fractionDigits > 0 && abs(value) * pow10(fractionDigits) >= 9.0e18 { fractionDigits -= 1 }
        let scale = pow10(fractionDigits)
        guard abs(value) * scale < 9.0e18 else { return nil }
        let scaled = Int64((abs(value) * scale).rounded())
        let negative = value < 0 && scaled != 0
        let unit = Int64(scale)
        var text = String(scaled / unit)
        var fraction = String(scaled % unit)
        if fractionDigits > 0 {
            fraction = String(repeating: "0", count: fractionDigits - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            if !fraction.isEmpty { text += "." + fraction }
        }
        return negative ? "-" + text : text
    }

    private static func pow10(_ n: Int) -> Double {
        var result = 1.0
        for _ in 0..<n { result *= 10 }
        return result
    }
}
