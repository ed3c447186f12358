-- Sets the system's trading state and gives it the next version, in one step (two operators changing it at
-- once get two versions, and every process ends on the last).
-- KEYS[1] control  bitten:control
-- ARGV    field/value pairs (state, reason, by, at, close_all).
-- Returns the new version.
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], unpack(ARGV))
return version
