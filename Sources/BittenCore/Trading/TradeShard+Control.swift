/// Operator controls in the shard: a user's trading state.
extension TradeShard {
    /// Sets a user's trading state (an operator's, or a risk limit's); false for an unknown user.
    @discardableResult
    public mutating func setTrading(_ uuid: String, _ control: TradingControl) -> Bool {
        guard var user = users[uuid] else { return false }
        user.trading = control
        users[uuid] = user
        changes.append(.user(user, fields: []))
        var event = [
            "user_uuid": uuid, "state": control.state.rawValue, "reason": control.reason, "by": control.by,
            "at": Self.number(control.at),
        ]
        if let until = control.until { event["until"] = Self.number(until) }
        changes.append(.event("user.trading", event))
        return true
    }
}
