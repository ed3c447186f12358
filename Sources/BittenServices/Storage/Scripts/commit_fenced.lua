-- A trade shard's commit on a Redis Cluster: the commands run only while the lease holds the committer's
-- token (a paused or cut-off old owner can never write). Every key the commands touch is declared and in
-- the shard's slot.
-- KEYS[1] lease  shard:{tN}:lease; KEYS[2..] every key the commands touch.
-- ARGV[1] token, then per command: its word count, then its words.
-- A command Redis refuses (a key of another type) does not stop the others, as in MULTI/EXEC; it is
-- reported instead.
-- Returns {the number of commands run, {position, error, position, error, …}} (positions from 1), or the
-- error `FENCED <holder>`.
local lease, token = KEYS[1], ARGV[1]
local holder = redis.call('GET', lease)
if holder ~= token then return redis.error_reply('FENCED ' .. tostring(holder or '')) end
local i, n, refused = 2, 0, {}
while i <= #ARGV do
  local words = tonumber(ARGV[i])
  n = n + 1
  local reply = redis.pcall(unpack(ARGV, i + 1, i + words))
  if type(reply) == 'table' and reply.err then
    refused[#refused + 1] = n
    refused[#refused + 1] = reply.err
  end
  i = i + words + 1
end
return {n, refused}
