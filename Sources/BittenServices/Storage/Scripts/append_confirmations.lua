-- Appends a batch of confirmations to a shard's ledger as one stream entry (one `m` field per
-- confirmation), leaving out those this writer already appended (or a later one), so a retried batch or a
-- replayed spool adds nothing twice.
-- KEYS[1] stream   the shard's ledger (stream:confirmations:{tN})
-- KEYS[2] writers  the highest sequence appended per writer (confirmations:writers:{tN})
-- ARGV[1] writer, ARGV[2] expected: the entry the caller's trade engine stands at ('0': an empty stream,
-- '': none), then per confirmation: sequence, encoded confirmation.
-- Returns {appended, the new entry's id, expected when the stream ended there before this entry, else ''}.
local stream, writers = KEYS[1], KEYS[2]
local writer, expected = ARGV[1], ARGV[2]
local last = tonumber(redis.call('HGET', writers, writer) or '0')
local fields, last_text = {}, nil
for i = 3, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > last then
    fields[#fields + 1] = 'm'
    fields[#fields + 1] = ARGV[i + 1]
    last, last_text = seq, ARGV[i]
  end
end
if #fields == 0 then return {0, '', ''} end
local previous = ''
if expected == '0' then
  if redis.call('XLEN', stream) == 0 then previous = '0' end
elseif expected ~= '' then
  if #redis.call('XRANGE', stream, '(' .. expected, '+', 'COUNT', 1) == 0 then previous = expected end
end
local id = redis.call('XADD', stream, '*', unpack(fields))
redis.call('HSET', writers, writer, last_text)
return {#fields / 2, id, previous}
