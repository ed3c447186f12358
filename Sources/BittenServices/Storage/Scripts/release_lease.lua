-- Gives a trade shard's lease up, only while the caller's token holds it.
-- KEYS[1] lease  shard:{tN}:lease
-- ARGV[1] token.
-- Returns 1.
local lease, token = KEYS[1], ARGV[1]
if redis.call('GET', lease) == token then redis.call('DEL', lease) end
return 1
