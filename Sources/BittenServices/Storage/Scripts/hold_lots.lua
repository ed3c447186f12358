-- Holds a fire's lots against a service-wide concentration limit (a symbol's or a signal's). The hash keeps a running
-- `total` of its other fields (each trade shard's exact lots, written by its owner, and the holds of fires it has not
-- counted yet), so a hold costs the same however many fields there are: the total plus the new lots must stay within
-- the limit; then the fire's hold is added to the fields and to the total.
-- KEYS[1] totals  concentration:symbol:{SYMBOL} or concentration:signal:{ID}
-- ARGV[1] the hold's field (h:FIRE_ID), ARGV[2] lots, ARGV[3] the limit, ARGV[4] seconds to keep the key (0: for ever)
-- Returns {1, total after} when held, {0, total before} when the limit would be passed (totals as text).
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
local lots, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
if total + lots > limit + 1e-9 then return {0, tostring(total)} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local after = redis.call('HINCRBYFLOAT', KEYS[1], 'total', ARGV[2])
if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
return {1, after}
