-- Takes or renews a trade shard's lease. The holder's token is `instance/boot|fence`; a new run of the same
-- instance (a restart) takes the shard back at once with the next fence, another instance waits until the
-- lease expires.
-- KEYS[1] lease  shard:{tN}:lease
-- KEYS[2] state  shard:{tN} (its `fence` counts the owners; commits WATCH this hash)
-- ARGV[1] instance, ARGV[2] boot, ARGV[3] time to live in milliseconds.
-- Returns the token held, or false while another instance holds the lease.
local lease, state = KEYS[1], KEYS[2]
local instance, boot, ttl = ARGV[1], ARGV[2], ARGV[3]
local current = redis.call('GET', lease)
local me = instance .. '/' .. boot .. '|'
if current then
  if string.sub(current, 1, #me) == me then
    redis.call('PEXPIRE', lease, ttl)
    return current
  end
  local same_instance = instance .. '/'
  if string.sub(current, 1, #same_instance) ~= same_instance then return false end
end
local token = me .. redis.call('HINCRBY', state, 'fence', 1)
redis.call('SET', lease, token, 'PX', ttl)
return token
