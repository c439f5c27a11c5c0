-- sla_schedule.lua — store the due times the daemon computed for clocks
-- (daemon/sla.c), each only if the clock is still as it was read.
-- KEYS[1] schedule zset, KEYS[2] due zset
-- ARGV: 1 prefix, 2 now (ms), 3 events maxlen, 4 acknowledgement window (ms),
--   then groups of 10:
--   member (<conv>|<clock>), schedule score read, state read, started_at read,
--   action (due|none), a (due ms), b (warn ms or ''),
--   acknowledgement text to send now ('' for none), segments read, elapsed
--   with those segments added, the run's target (ms)
local P, now, emax, window = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])

-- The customer hears when to expect an answer: once per conversation and
-- at most once per customer per window, through the outbound path like an
-- agent reply (agent_id "omnirouted", which counts as no agent's reply).
local function acknowledge(conv, ck, text, due)
  if redis.call('HSETNX', ck, 'sla_ack', 'pending') == 0 then return end
  local cust = redis.call('HGET', ck, 'customer_key')
  local last = cust and tonumber(redis.call('HGET', cust, 'last_ack_at') or '') or nil
  if last and tonumber(now) - last < window then
    redis.call('HSET', ck, 'sla_ack', 'skipped: acknowledged within the window')
    return
  end
  local id = redis.call('XADD', P .. 'outbox', '*', 'conversation_id', conv,
    'agent_id', 'omnirouted', 'text', text, 'source', 'auto-ack')
  redis.call('HSET', ck .. ':reply:' .. id, 'reply_id', id, 'conversation_id', conv,
    'agent_id', 'omnirouted', 'text', text, 'status', 'queued', 'attempts', 0,
    'created_at', now, 'updated_at', now, 'source', 'auto-ack')
  redis.call('HSET', ck, 'sla_ack', 'sent', 'sla_ack_reply', id, 'sla_ack_at', now)
  if cust then redis.call('HSET', cust, 'last_ack_at', now) end
  local c = redis.call('HMGET', ck, 'queue', 'channel', 'priority')
  redis.call('XADD', P .. 'events', 'MAXLEN', '~', emax, '*', 'type', 'conversation.acknowledged',
    'conversation_id', conv, 'queue', c[1] or '', 'channel', c[2] or '', 'priority', c[3] or '',
    'reply_id', id, 'due', due, 'by', 'omnirouted', 'at', now)
end

local n = 0
for i = 5, #ARGV, 11 do
  local member, score, state, started = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local action, a, b, ack = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
  local segments, elapsed, target = ARGV[i + 8], ARGV[i + 9], ARGV[i + 10]
  local conv, clock = string.match(member, '^(.+)|(%a+)$')
  local ck = P .. 'conv:{' .. (conv or '') .. '}'
  local cur = conv and redis.call('HMGET', ck, 'sla_' .. clock .. '_state',
    'sla_' .. clock .. '_started_at', 'sla_' .. clock .. '_segments') or {}
  if cur[1] == state and (cur[2] or '') == started and (cur[3] or '') == segments then
    if action == 'due' then
      redis.call('HSET', ck, 'sla_' .. clock .. '_due', a, 'sla_' .. clock .. '_warn_at', b,
        'sla_' .. clock .. '_elapsed', elapsed, 'sla_' .. clock .. '_segments', '[]',
        'sla_' .. clock .. '_target', target)
      redis.call('ZADD', KEYS[2], a, member .. '|breach')
      if b ~= '' then redis.call('ZADD', KEYS[2], b, member .. '|warn') end
      if ack ~= '' then acknowledge(conv, ck, ack, a) end
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
