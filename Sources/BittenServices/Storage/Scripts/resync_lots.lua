-- A trade shard's exact lots into a concentration hash (see hold_lots.lua), in one step: its field is set (or
-- removed at 0), the holds that figure now counts are removed, and the running `total` follows.
-- KEYS[1] totals  concentration:{lots}:symbol:SYMBOL or concentration:{lots}:signal:ID
-- ARGV[1] the shard's field ("": leave the shards' fields alone, only remove holds), ARGV[2] its lots (0: none),
-- ARGV[3] seconds to keep the key (0: as it is), ARGV[4...] hold fields to remove (h:FIRE_ID)
-- Returns the total after.
local delta = 0
if ARGV[1] ~= '' then
  delta = tonumber(ARGV[2]) - tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
  if tonumber(ARGV[2]) > 0 then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  else
    redis.call('HDEL', KEYS[1], ARGV[1])
  end
end
for i = 4, #ARGV do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  if held then
    delta = delta - tonumber(held)
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
local total = tonumber(redis.call('HINCRBYFLOAT', KEYS[1], 'total', tostring(delta)))
if redis.call('HLEN', KEYS[1]) == 1 and math.abs(total) < 1e-9 then
  redis.call('DEL', KEYS[1])
  return '0'
end
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return tostring(total)
