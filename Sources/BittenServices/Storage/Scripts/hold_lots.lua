-- Holds fires' lots against the service-wide concentration limits (a symbol's, a signal's), several fires at once in
-- the order given, every key of a fire in the same step: a fire is held on all its keys or on none. Each hash keeps a
-- running `total` of its other fields (each trade shard's exact lots, written by its owner, and the holds of fires
-- it has not counted yet), so a hold costs the same however many fields there are: on every key the total plus the
-- fire's lots must stay within that key's limit; then the fire's hold is added to the fields and to the totals. A
-- fire refused leaves nothing; the fires after it are checked against the totals without it. The keys share one
-- hash tag (`concentration:{lots}:…`), so this works on a Redis Cluster too.
-- KEYS[1], KEYS[2] … the totals: concentration:{lots}:symbol:SYMBOL, concentration:{lots}:signal:ID (one or both)
-- ARGV[1..2n] per key: its limit, seconds to keep it (0: for ever); then per fire: the hold's field (h:FIRE_ID), lots
-- Returns per fire {1, 0, ''} when held, or {0, k, total of key k} when key k (from 1) would pass its limit, one
-- after the other: {held, key, total, held, key, total, …}.
local n = #KEYS
local totals, added = {}, {}
for k = 1, n do
  totals[k] = tonumber(redis.call('HGET', KEYS[k], 'total') or '0')
  added[k] = 0
end
local replies = {}
for i = 2 * n + 1, #ARGV, 2 do
  local lots = tonumber(ARGV[i + 1])
  local refusedBy = 0
  for k = 1, n do
    if totals[k] + lots > tonumber(ARGV[2 * k - 1]) + 1e-9 then
      refusedBy = k
      break
    end
  end
  if refusedBy > 0 then
    replies[#replies + 1] = 0
    replies[#replies + 1] = refusedBy
    replies[#replies + 1] = tostring(totals[refusedBy])
  else
    for k = 1, n do
      redis.call('HSET', KEYS[k], ARGV[i], ARGV[i + 1])
      totals[k] = totals[k] + lots
      added[k] = added[k] + lots
    end
    replies[#replies + 1] = 1
    replies[#replies + 1] = 0
    replies[#replies + 1] = ''
  end
end
for k = 1, n do
  if added[k] > 0 then
    redis.call('HINCRBYFLOAT', KEYS[k], 'total', tostring(added[k]))
    if tonumber(ARGV[2 * k]) > 0 then redis.call('EXPIRE', KEYS[k], ARGV[2 * k]) end
  end
end
return replies
