/// Windows-1252, the ANSI code page of most MetaTrader terminals: the EA sends broker and company
/// names in it. Bytes 0x80–0x9F map to the code page's own characters; the rest are Latin-1.
public enum Windows1252 {
    /// The characters of 0x80–0x9F (U+FFFD for the five bytes the code page leaves undefined).
    static let high: [UInt32] = [
        0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD,
        0x017D, 0xFFFD, 0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A,
        0x0153, 0xFFFD, 0x017E, 0x0178,
    ]

    /// Decodes bytes as Windows-1252 (every byte is a character; nothing fails).
    public static func decode<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        var text = String.UnicodeScalarView()
        for byte in bytes {
            let value = byte >= 0x80 && byte <= 0x9F ? high[Int(byte - 0x80)] : UInt32(byte)
            text.append(Unicode.Scalar(value) ?? "\u{FFFD}")
        }
        return String(text)
    }

    /// Encodes text as Windows-1252 (what the EA writes); a character the code page lacks becomes `?`.
    public static func encode(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if scalar.value < 0x80 || (scalar.value >= 0xA0 && scalar.value <= 0xFF) {
                bytes.append(UInt8(scalar.value))
            } else if let index = high.firstIndex(of: scalar.value) {
                bytes.append(UInt8(0x80 + index))
            } else {
                bytes.append(UInt8(ascii: "?"))
            }
        }
        return bytes
    }
}
