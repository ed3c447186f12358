/// A MetaTrader timestamp, `YYYY.MM.DD HH:MM:SS`, in the broker server's time (no time zone).
public struct MetaTraderTime: Sendable, Equatable, Comparable, CustomStringConvertible {
    public let year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int

    /// The date as `YYYY-MM-DD` (made by hand: once per close, where `String(format:)` costs about a microsecond).
    public var dateText: String {
        PlainDecimal.padded(year, width: 4) + "-" + PlainDecimal.padded(month, width: 2) + "-"
            + PlainDecimal.padded(day, width: 2)
    }

    /// Parses `YYYY.MM.DD HH:MM:SS`; nil when the text does not have exactly that form.
    public init?(_ text: String) {
        var text = text
        guard let time = text.withUTF8({ MetaTraderTime(bytes: $0) }) else { return nil }
        self = time
    }

    /// Parses `YYYY.MM.DD HH:MM:SS` from its bytes.
    public init?(bytes: UnsafeBufferPointer<UInt8>) {
        guard bytes.count == 19, bytes[4] == 0x2E, bytes[7] == 0x2E, bytes[10] == 0x20, bytes[13] == 0x3A,
            bytes[16] == 0x3A
        else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                let byte = bytes[index]
                guard byte >= 0x30 && byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        guard (1..<13).contains(month), (1...MetaTraderTime.daysIn(month: month, year: year)).contains(day),
            hour < 24, minute < 60, second < 60
        else { return nil }
        (self.year, self.month, self.day, self.hour, self.minute, self.second) = (
            year, month, day, hour, minute, second
        )
    }

    /// Makes a time from seconds since 1970 (read as UTC).
    public init(epochSeconds: Int) {
        var days = epochSeconds >= 0 ? epochSeconds / 86_400 : (epochSeconds - 86_399) / 86_400
        let secs = epochSeconds - days * 86_400
        hour = secs / 3600
        minute = secs % 3600 / 60
        second = secs % 60
        // Civil-from-days (Howard Hinnant).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = doy - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Seconds since 1970-01-01 00:00:00, reading the wall time as UTC.
    public var epochSeconds: Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return days * 86_400 + hour * 3600 + minute * 60 + second
    }

    /// Earlier than.
    public static func < (lhs: MetaTraderTime, rhs: MetaTraderTime) -> Bool { lhs.epochSeconds < rhs.epochSeconds }

    /// The MetaTrader text form.
    public var description: String {
        let pad = PlainDecimal.padded
        return "\(pad(year, 4)).\(pad(month, 2)).\(pad(day, 2)) \(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2))"
    }
}
