-- reply_begin.lua — take an outbox entry for delivery, at most once.
-- KEYS[1] reply hash, KEYS[2] conversation hash, KEYS[3] events, KEYS[4] outbox,
-- KEYS[5] idempotency key of an entry written straight into the outbox
-- ARGV: 1 reply id, 2 conversation id, 3 agent id, 4 text, 5 now (ms), 6 events maxlen,
--       7 has idempotency key (1|0), 8 its ttl (s), 9 provider to send through instead
--       of the conversation's ('' none: a copy by another channel, e.g. a chat reply
--       emailed to a visitor who left)
-- Returns {'send', provider, customer_handle, customer_id, channel, subject,
--          last inbound external id, thread reference, copy (1|0)}
--       | {'done'} (already handled) | {'failed', why} (and the entry acknowledged)
local function close(status, err)
  redis.call('HSET', KEYS[1], 'reply_id', ARGV[1], 'conversation_id', ARGV[2],
    'agent_id', ARGV[3], 'text', ARGV[4], 'status', status, 'error', err, 'updated_at', ARGV[5])
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'type', 'reply.failed',
    'conversation_id', ARGV[2], 'reply_id', ARGV[1], 'status', status, 'at', ARGV[5])
  redis.call('XACK', KEYS[4], 'omnirouted', ARGV[1])
  return {'failed', err}
end

local status = redis.call('HGET', KEYS[1], 'status')
if status == 'sending' then
  -- A daemon stopped while a request to the provider was in flight: the
  -- provider may have sent it. Never send twice; say so instead.
  return close('unknown', 'outcome unknown: the daemon stopped while sending; not resent')
end
if status and status ~= 'queued' and status ~= 'retrying' then
  redis.call('XACK', KEYS[4], 'omnirouted', ARGV[1])
  return {'done'}
end
if ARGV[7] == '1' and not status then
  -- A tool that wrote the same idempotency key twice: the first entry wins.
  local first = redis.call('GET', KEYS[5])
  if first and first ~= ARGV[1] then
    redis.call('HSET', KEYS[1], 'reply_id', ARGV[1], 'conversation_id', ARGV[2],
      'status', 'duplicate', 'duplicate_of', first, 'updated_at', ARGV[5])
    redis.call('XACK', KEYS[4], 'omnirouted', ARGV[1])
    return {'done'}
  end
  redis.call('SET', KEYS[5], ARGV[1], 'EX', ARGV[8])
end
local conv = redis.call('HMGET', KEYS[2], 'provider', 'customer_handle', 'customer_id', 'channel',
  'subject', 'last_in_external_id', 'thread_ref')
local via = ARGV[9] or ''
local function send()
  if via ~= '' then
    return {'send', via, conv[2] or '', conv[3] or '', conv[4] or '', conv[5] or '', '', '', '1'}
  end
  return {'send', conv[1], conv[2] or '', conv[3] or '', conv[4] or '', conv[5] or '',
    conv[6] or '', conv[7] or '', '0'}
end
if not conv[1] then return close('failed', 'no such conversation') end
if ARGV[4] == '' then return close('failed', 'empty text') end
redis.call('HSET', KEYS[1], 'reply_id', ARGV[1], 'conversation_id', ARGV[2], 'agent_id', ARGV[3],
  'text', ARGV[4], 'provider', conv[1], 'updated_at', ARGV[5])
-- The agent answered: the conversation now waits on the customer, and a
-- pull claim behind it is confirmed (daemon/routing.lua). The daemon's own
-- messages (agent "omnirouted": acknowledgements) are no agent's answer.
if ARGV[3] == 'omnirouted' then
  return send()
end
-- Only the first take of a reply counts for the lifecycle, clocks and KPIs:
-- a retry taken over after a daemon died must not stop a clock the
-- customer has started since.
if redis.call('HSETNX', KEYS[1], 'taken', '1') == 0 then
  return send()
end
redis.call('HSET', KEYS[2], 'awaiting_customer', '1')
local st = redis.call('HMGET', KEYS[2], 'status', 'work_key', 'work_id', 'queue', 'priority')
redis.call('HSETNX', KEYS[2], 'first_response_at', ARGV[5])
-- KPIs (GET /v1/stats): how long the customer waited for this answer.
local p_ = string.match(KEYS[4], '^(.*)outbox$') or ''
local BUCKETS = {30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, 259200}
local kv = redis.call('HMGET', KEYS[2], 'awaiting_since', 'awaiting_kind', 'queue')
if kv[1] and kv[1] ~= '' then
  local ms = tonumber(ARGV[5]) - tonumber(kv[1])
  local le = '+Inf'
  for _, b in ipairs(BUCKETS) do
    if ms <= b * 1000 then le = tostring(b) break end
  end
  local base = (conv[4] or '') .. '|' .. (kv[3] or '') .. '|'
  local key = p_ .. 'stats:' .. (kv[2] or 'next_response')
  redis.call('HINCRBY', key, base .. le, 1)
  redis.call('HINCRBY', key, base .. 'count', 1)
  redis.call('HINCRBY', key, base .. 'sum_ms', ms)
  redis.call('HSET', KEYS[2], 'awaiting_since', '')
end
-- SLA clocks (docs/sla.md): the reply stops first and next response (hit
-- or missed) and pauses resolution while the conversation waits on the
-- customer. The daemon adds up the business time so far (sla.c).
local sla = redis.call('HMGET', KEYS[2], 'sla_policy', 'sla_fr_state', 'sla_fr_due',
  'sla_nr_state', 'sla_nr_due', 'sla_res_state', 'sla_fr_breached', 'sla_nr_breached')
if sla[1] and sla[1] ~= '' then
  local p = string.match(KEYS[4], '^(.*)outbox$') or ''
  local due_key, sched_key = p .. 'sla:due', p .. 'sla:schedule'
  local function stop(clock, state, due, breached)
    if state ~= 'running' then return end
    local missed = breached == '1' or (due and due ~= '' and tonumber(ARGV[5]) > tonumber(due))
    redis.call('HSET', KEYS[2], 'sla_' .. clock .. '_state', missed and 'missed' or 'hit',
      'sla_' .. clock .. '_stopped_at', ARGV[5])
    redis.call('HINCRBY', p .. 'stats:sla', clock .. '|' .. (conv[4] or '') .. '|' .. (kv[3] or '')
      .. '|' .. (missed and 'missed' or 'hit'), 1)
    redis.call('ZREM', due_key, ARGV[2] .. '|' .. clock .. '|warn', ARGV[2] .. '|' .. clock .. '|breach')
    redis.call('ZREM', sched_key, ARGV[2] .. '|' .. clock)
  end
  stop('fr', sla[2], sla[3], sla[7])
  stop('nr', sla[4], sla[5], sla[8])
  if sla[6] == 'running' then
    redis.call('HSET', KEYS[2], 'sla_res_state', 'paused', 'sla_res_paused_at', ARGV[5])
    redis.call('ZREM', due_key, ARGV[2] .. '|res|warn', ARGV[2] .. '|res|breach')
    redis.call('ZREM', sched_key, ARGV[2] .. '|res')
  end
end
redis.call('HSET', KEYS[2], 'last_agent_reply_at', ARGV[5])
if st[1] == 'assigned' then
  redis.call('HSET', KEYS[2], 'status', 'waiting', 'waiting_since', ARGV[5], 'accepted', '1',
    'updated_at', ARGV[5])
  if st[2] and st[2] ~= '' and st[3] and st[3] ~= '' then
    redis.call('XACK', st[2], 'agents', st[3])
  end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'type', 'conversation.waiting',
    'conversation_id', ARGV[2], 'queue', st[4] or '', 'channel', conv[4] or '',
    'priority', st[5] or '', 'agent_id', ARGV[3], 'by', ARGV[3], 'reason', 'agent replied',
    'at', ARGV[5])
end
if not status then redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', 0, 'created_at', ARGV[5]) end
return send()
