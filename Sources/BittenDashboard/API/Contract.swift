import BittenCore
import Foundation

/// Records of the services as the API's generated types.
///
/// The services' records (`FireRecord`, `PositionRecord`, `HealthReport`, CITADEL's JSON) encode themselves in
/// snake_case; the API answers with the types generated from `openapi.yaml`. `Contract.convert` goes from the one to
/// the other through their JSON, so a record that no longer matches the document (a field renamed, a required
/// field missing, a value outside its enum) fails here, as a 500 naming the field, never as a silent difference
/// between what the document promises and what the server sends.
enum Contract {
    /// A record that does not decode as its schema.
    struct Violation: Error, CustomStringConvertible {
        var type: String
        var reason: String
        var description: String { "a \(type) does not match the API document: \(reason)" }
    }

    /// `value` (encoded in snake_case) decoded as the generated `T`.
    static func convert<T: Decodable>(_ value: some Encodable, to type: T.Type = T.self) throws -> T {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try decode(try encoder.encode(value), as: type)
    }

    /// An already built JSON value decoded as the generated `T`.
    static func convert<T: Decodable>(json value: JSONValue, to type: T.Type = T.self) throws -> T {
        try decode(Data(value.serialized.utf8), as: type)
    }

    private static func decode<T: Decodable>(_ data: Data, as type: T.Type) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw Violation(type: "\(type)", reason: error.briefly)
        }
    }
}

extension DecodingError {
    /// The coding path and what was wrong there, in one line.
    var briefly: String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch self {
        case .keyNotFound(let key, let context): return "\(path(context.codingPath + [key])) is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(self)"
        }
    }
}

/// The one pagination scheme of every list: `limit` (how many) and `offset` (how many to skip).
struct Page: Sendable, Equatable {
    var limit: Int
    var offset: Int

    /// The largest `limit` of most lists, and of `/nodes`.
    static let maxLimit = 1000
    static let maxNodeLimit = 500
    /// The largest `offset` (lists are bounded; this bounds what one request may read).
    static let maxOffset = 100_000

    /// The page asked for, checked against the document's bounds (the generated code checks types, not ranges).
    init(limit: Int?, offset: Int?, defaultLimit: Int = 100, maxLimit: Int = Page.maxLimit) throws {
        self.limit = limit ?? defaultLimit
        self.offset = offset ?? 0
        guard (1...maxLimit).contains(self.limit) else {
            throw APIError(.badRequest, code: "bad_parameter", "limit must be an integer in 1...\(maxLimit)")
        }
        guard (0...Page.maxOffset).contains(self.offset) else {
            throw APIError(.badRequest, code: "bad_parameter", "offset must be an integer in 0...\(Page.maxOffset)")
        }
    }

    /// How many records to read from a newest-first source so that the page can be cut from them.
    var end: Int { offset + limit }

    /// This page of `items`.
    func cut<T>(_ items: [T]) -> [T] { Array(items.dropFirst(offset).prefix(limit)) }
}
