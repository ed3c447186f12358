/// A commit's changes to the members of sets, sorted sets and marker hashes, written once per key.
extension ShardStore {
    /// What a commit adds to and removes from each collection key (the open-ticket sets, the in-flight sorted sets,
    /// the fired markers), gathered over its events and written as one add and one remove command per key instead
    /// of one command per event. A member's last change in the commit is the one written, so Redis ends up as it
    /// would after the events' commands one by one; each member is in at most one of a key's two commands, so their
    /// order does not matter.
    struct MemberChanges {
        /// The kind of collection a key holds.
        enum Kind {
            /// SADD / SREM.
            case set
            /// ZADD score member / ZREM (the value is the score).
            case sortedSet
            /// HSET field value / HDEL (the value is the field's).
            case hash
        }

        /// One key's changes: its members in the order first changed, each with its last change (a value when
        /// added, nil when removed).
        private struct Changes {
            var kind: Kind
            var order: [String] = []
            var last: [String: String?] = [:]

            mutating func record(_ member: String, _ value: String?) {
                if last.updateValue(value, forKey: member) == nil { order.append(member) }
            }
        }

        private var keys: [String] = []
        private var changes: [String: Changes] = [:]

        /// `member` added to `key` (with its score or field value for a sorted set or hash).
        mutating func add(_ key: String, _ kind: Kind, _ member: String, _ value: String = "") {
            record(key, kind, member, value)
        }

        /// `member` removed from `key`.
        mutating func remove(_ key: String, _ kind: Kind, _ member: String) {
            record(key, kind, member, nil)
        }

        /// One lookup of the key per change (this runs for every event of every commit).
        private mutating func record(_ key: String, _ kind: Kind, _ member: String, _ value: String?) {
            let known = changes.count
            changes[key, default: Changes(kind: kind)].record(member, value)
            if changes.count > known { keys.append(key) }
        }

        /// The commands, per key in the order first changed: its additions, then its removals.
        var commands: [[String]] {
            var commands: [[String]] = []
            for key in keys {
                guard let entry = changes[key] else { continue }
                var added: [String] = []
                var removed: [String] = []
                for member in entry.order {
                    switch entry.last[member] {
                    case .some(.some(let value)):
                        switch entry.kind {
                        case .set: added.append(member)
                        case .sortedSet: added += [value, member]
                        case .hash: added += [member, value]
                        }
                    default:
                        removed.append(member)
                    }
                }
                let (add, remove) =
                    switch entry.kind {
                    case .set: ("SADD", "SREM")
                    case .sortedSet: ("ZADD", "ZREM")
                    case .hash: ("HSET", "HDEL")
                    }
                if !added.isEmpty { commands.append([add, key] + added) }
                if !removed.isEmpty { commands.append([remove, key] + removed) }
            }
            return commands
        }
    }
}
