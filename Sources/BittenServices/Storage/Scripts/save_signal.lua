-- Stores a new signal; never overwrites one (a repeated intake is recognised).
-- KEYS[1] signal  signal:{id}
-- ARGV[1] time to live in seconds, then field/value pairs.
-- Returns 1 when stored, 0 when the signal exists already.
local signal, ttl = KEYS[1], ARGV[1]
if redis.call('EXISTS', signal) == 1 then return 0 end
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', signal, unpack(fields))
redis.call('EXPIRE', signal, ttl)
return 1
