-- Dead-letter entries of one stream, each at most once (see monitor/consumer.py,
-- StreamConsumer._dead_letter, which builds every argument).
--
-- An entry goes to the DLQ only when this call's XACK takes it out of the
-- group's pending list. The same entry can be handled twice by one consumer
-- (XAUTOCLAIM takes back an entry it read ahead and has not processed yet, on a
-- loaded machine), or by two replicas around a takeover: the second call acks
-- nothing and writes nothing.
--
-- KEYS: 1 the stream, 2 the DLQ. ARGV: 1 the consumer group, 2 the DLQ's
-- approximate MAXLEN, then per entry: its id, the number of field/value
-- arguments that follow, those arguments. Answers the number dead-lettered.
named('dead_letter')

need_keys(2)
need_args(2)
local group, maxlen = ARGV[1], int_arg(2, 'DLQ length', 1)
local entries, i = {}, 3
while i <= #ARGV do
  local n = int_arg(i + 1, 'field count of entry ' .. tostring(ARGV[i]), 2)
  if n % 2 ~= 0 or i + 1 + n > #ARGV then
    fail('entry ' .. ARGV[i] .. ' must be followed by an even field count and that many arguments')
  end
  entries[#entries + 1] = {id = ARGV[i], first = i + 2, last = i + 1 + n}
  i = i + 2 + n
end

local written = 0
for _, e in ipairs(entries) do
  if redis.call('XACK', KEYS[1], group, e.id) == 1 then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', unpack(ARGV, e.first, e.last))
    written = written + 1
  end
end
return written
