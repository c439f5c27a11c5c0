-- sla_schedule.lua — store the due times the daemon computed for clocks
-- (daemon/sla.c), each only if the clock is still as it was read.
-- KEYS[1] schedule zset, KEYS[2] due zset
-- ARGV: 1 prefix, then groups of 7:
--   member (<conv>|<clock>), schedule score read, state read, started_at read,
--   action (due|elapsed|none), a (due ms | elapsed ms), b (warn ms or '')
local n = 0
for i = 2, #ARGV, 7 do
  local member, score, state, started = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local action, a, b = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local conv, clock = string.match(member, '^(.+)|(%a+)$')
  local ck = ARGV[1] .. 'conv:{' .. (conv or '') .. '}'
  local cur = conv and redis.call('HMGET', ck, 'sla_' .. clock .. '_state',
    'sla_' .. clock .. '_started_at') or {}
  if cur[1] == state and (cur[2] or '') == started then
    if action == 'due' then
      redis.call('HSET', ck, 'sla_' .. clock .. '_due', a, 'sla_' .. clock .. '_warn_at', b)
      redis.call('ZADD', KEYS[2], a, member .. '|breach')
      if b ~= '' then redis.call('ZADD', KEYS[2], b, member .. '|warn') end
    elseif action == 'elapsed' then
      redis.call('HSET', ck, 'sla_' .. clock .. '_elapsed', a)
    elseif action == 'none' then
      redis.call('HSET', ck, 'sla_' .. clock .. '_state', 'none')
    end
    n = n + 1
  end
  -- A newer request for the same clock has a newer score: leave it.
  local now_score = redis.call('ZSCORE', KEYS[1], member)
  if now_score and tonumber(now_score) == tonumber(score) then
    redis.call('ZREM', KEYS[1], member)
  end
end
return n
