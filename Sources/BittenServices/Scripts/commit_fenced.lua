-- A trade shard's commit on a Redis Cluster: the commands run only while the lease holds the committer's
-- token (a paused or cut-off old owner can never write). Every key the commands touch is declared and in
-- the shard's slot.
-- KEYS[1] lease  shard:{tN}:lease; KEYS[2..] every key the commands touch.
-- ARGV[1] token, then per command: its word count, then its words.
-- Returns the number of commands run, or the error `FENCED <holder>`.
local lease, token = KEYS[1], ARGV[1]
local holder = redis.call('GET', lease)
if holder ~= token then return redis.error_reply('FENCED ' .. tostring(holder or '')) end
local i, n = 2, 0
while i <= #ARGV do
  local words = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + words))
  i = i + words + 1
  n = n + 1
end
return n
