-- sla_pending.lua — clocks waiting for the daemon to compute their due time
-- (daemon/sla.c). Reads only: the answer is acted on by sla_schedule.lua,
-- which checks the clock did not change in between.
-- KEYS[1] schedule zset (<prefix>sla:schedule)
-- ARGV: 1 prefix, 2 now (ms), 3 most
-- Returns {{member, score, policy, state, started_at, elapsed, segments
--           (JSON [[from, to], ...] ran before pauses, not yet in elapsed),
--           language, channel, ack (acknowledgement state), target (ms, fixed
--           when the run's due time was first computed)}, ...}
local out = {}
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'WITHSCORES', 'LIMIT', 0, ARGV[3])
for i = 1, #items, 2 do
  local member = items[i]
  local conv, clock = string.match(member, '^(.+)|(%a+)$')
  local f = {}
  if conv then
    f = redis.call('HMGET', ARGV[1] .. 'conv:{' .. conv .. '}', 'sla_policy',
      'sla_' .. clock .. '_state', 'sla_' .. clock .. '_started_at',
      'sla_' .. clock .. '_elapsed', 'sla_' .. clock .. '_segments', 'language', 'channel',
      'sla_ack', 'sla_' .. clock .. '_target')
  end
  out[#out + 1] = {member, items[i + 1], f[1] or '', f[2] or '', f[3] or '', f[4] or '0', f[5] or '',
    f[6] or '', f[7] or '', f[8] or '', f[9] or ''}
end
return out
