-- Holds fires' lots against a service-wide concentration limit (a symbol's or a signal's), several fires at once in
-- the order given. The hash keeps a running `total` of its other fields (each trade shard's exact lots, written by
-- its owner, and the holds of fires it has not counted yet), so a hold costs the same however many fields there are:
-- the total plus a fire's lots must stay within the limit; then the fire's hold is added to the fields and to the
-- total. A fire refused leaves nothing; the fires after it are checked against the total without it.
-- KEYS[1] totals  concentration:symbol:{SYMBOL} or concentration:signal:{ID}
-- ARGV[1] the limit, ARGV[2] seconds to keep the key (0: for ever), then per fire: the hold's field (h:FIRE_ID), lots
-- Returns per fire {1, total after} when held, {0, total before} when the limit would be passed (totals as text),
-- one after the other: {held, total, held, total, …}.
local limit, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
local added, replies = 0, {}
for i = 3, #ARGV, 2 do
  local lots = tonumber(ARGV[i + 1])
  if total + lots > limit + 1e-9 then
    replies[#replies + 1] = 0
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    total = total + lots
    added = added + lots
    replies[#replies + 1] = 1
  end
  replies[#replies + 1] = tostring(total)
end
if added > 0 then
  redis.call('HINCRBYFLOAT', KEYS[1], 'total', tostring(added))
  if ttl > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
end
return replies
