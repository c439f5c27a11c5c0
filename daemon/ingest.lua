-- ingest.lua — store one inbound message atomically (daemon/ingest.c).
-- routing.lua is prepended (R).
--
-- Redis runs a script without interleaving other commands, so dedup,
-- threading, the conversation's lifecycle and the writes cannot race with
-- another daemon. A script is not a transaction, though: a failing command
-- leaves earlier writes in place. So every check that can fail (key types)
-- runs before the first write; after that only commands that cannot fail
-- on valid input remain. (Redis refuses a script's first write under OOM,
-- before anything is written.)
--
-- KEYS[1] dedup key    <prefix>dedup:<provider>:<external_id>
--                      = "<conversation> <message> <queue> <log entry id>"
-- KEYS[2] thread key   <prefix>thread:<channel>:<hash of provider, customer, thread>
-- KEYS[3] events       <prefix>events
-- ARGV: 1 prefix, 2 candidate conversation id, 3 message id,
--       4 message JSON object without conversation_id, 5 channel,
--       6 provider, 7 customer id, 8 customer name, 9 customer handle,
--       10 queue, 11 priority, 12 rule, 13 now (ms), 14 dedup ttl (s),
--       15 queue maxlen, 16 events maxlen, 17 language ('und' when unsure),
--       18 required skills (JSON array), 19 vip (1|0),
--       20-23 queue, priority, rule, skills when the customer is returning,
--       24-25 SLA policy (new customer, returning customer; '' for none),
--       26 auto-submitted (1|0: never acknowledged),
--       27 conversation the connector verified the message belongs to ('' none),
--       28 external id, 29 thread reference, 30 subject (kept on the
--       conversation for replies: email In-Reply-To / References / Re:)
-- Returns {status, conversation_id, message_id, queue, new(1|0), mode, log entry id}
-- where mode is the queue's mode when the conversation (re)entered a queue
-- ('push': the caller runs the dispatcher), else ''.

local prefix = ARGV[1]

local seen = redis.call('GET', KEYS[1])
if seen then
  -- "<conversation> <message> <queue>": answer the retry with the ids the
  -- first delivery got, so the provider's view stays consistent.
  -- (the log entry id was added later: older keys have three words)
  local c, m, q, l = string.match(seen, '^(%S+) (%S+) (%S+) ?(%S*)$')
  return {'duplicate', c or '', m or '', q or '', 0, '', l or ''}
end

local function require_type(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then
    return redis.error_reply('WRONGTYPE ' .. key .. ' is a ' .. t .. ', expected ' .. want)
  end
  return nil
end

local now = ARGV[13]
local emax, qmax = ARGV[16], ARGV[15]
local customer_key = prefix .. 'customer:' .. ARGV[6] .. ':' .. ARGV[7]

local conv = redis.call('GET', KEYS[2])
local new = 0
-- A conversation named by a signed reference (an email reply token) wins
-- over the thread key, and the thread key is bound to it below so the
-- rest of that thread follows.
local bind = false
local hint = ARGV[27] or ''
if hint ~= '' and hint ~= conv and redis.call('EXISTS', R.conv_key(hint)) == 1 then
  conv = hint
  bind = true
end
if not conv then
  conv = ARGV[2]
  new = 1
end
local conv_key = R.conv_key(conv)
local log_key = conv_key .. ':log'

local c = {}
local queue, priority, rule, skills = ARGV[10], ARGV[11], ARGV[12], ARGV[18]
local returning = '0'
local policy = ARGV[24] or ''
if new == 1 then
  local previous = tonumber(redis.call('HGET', customer_key, 'conversations') or '0') or 0
  if previous > 0 then
    returning = '1'
    queue, priority, rule, skills = ARGV[20], ARGV[21], ARGV[22], ARGV[23]
    policy = ARGV[25] or ''
  end
else
  c = R.hash(conv_key)
  queue = c.queue or queue
end

-- A survey answer: the whole text is one digit 1-5, within the window.
local rating = nil
if new == 0 and c.csat_state == 'asked' then
  local ok, m = pcall(cjson.decode, ARGV[4])
  local text = ok and type(m) == 'table' and type(m.text) == 'string' and m.text or ''
  local digit = string.match(text, '^%s*([1-5])%s*[%.!]?%s*$')
  local window = tonumber(redis.call('HGET', R.key('csat', 'conf'), 'window_ms') or '0') or 0
  if digit and tonumber(now) - (tonumber(c.csat_asked_at or '0') or 0) <= window then
    rating = digit
  end
end

-- Every key a write below may touch (a wrong type there would fail the
-- script half way). R.queue_conf reads the queue's settings hash: a wrong
-- type raises here, still before any write.
local band = new == 1 and priority or (c.priority or priority)
local will_enqueue = new == 1 or c.status == 'resolved'
local err = require_type(conv_key, 'hash') or require_type(log_key, 'stream')
  or require_type(KEYS[3], 'stream') or require_type(customer_key, 'hash')
  or require_type(R.key('queue', queue, 'waiting'), 'zset')
  or require_type(R.key('queues'), 'set') or require_type(R.key('sla', 'schedule'), 'zset')
if not err and will_enqueue and R.queue_conf(queue).mode == 'pull' then
  err = require_type(R.key('queue', queue, band), 'stream')
end
if not err and not will_enqueue and (c.status == 'assigned' or c.status == 'waiting') then
  err = require_type(R.key('agent', c.agent_id or '', 'inbox'), 'stream')
end
if err then return err end

-- Writes from here on.
local opts = {now = now, maxlen = emax, qmax = qmax, by = 'customer'}

-- Starts an SLA clock: the daemon computes its due time with the policy's
-- calendar (daemon/sla.c) from the schedule request.
local function start_clock(clock)
  redis.call('HSET', conv_key, 'sla_' .. clock .. '_state', 'running',
    'sla_' .. clock .. '_started_at', now, 'sla_' .. clock .. '_due', '',
    'sla_' .. clock .. '_warn_at', '', 'sla_' .. clock .. '_breached', '0',
    'sla_' .. clock .. '_warned', '0', 'sla_' .. clock .. '_elapsed', 0,
    'sla_' .. clock .. '_segments', '[]', 'sla_' .. clock .. '_target', '')
  redis.call('ZADD', R.key('sla', 'schedule'), now, conv .. '|' .. clock)
end

-- Resumes the paused resolution clock: the run it paused keeps its
-- warnings and breach; the stretch it ran before the pause is kept as a
-- segment the daemon turns into business time (sla.c) when it computes
-- the new due time, so nothing is lost however fast the customer answers.
local function resume_resolution()
  local seg = R.list(c.sla_res_segments)
  seg[#seg + 1] = {tonumber(c.sla_res_started_at), tonumber(c.sla_res_paused_at)}
  redis.call('HSET', conv_key, 'sla_res_state', 'running', 'sla_res_started_at', now,
    'sla_res_segments', cjson.encode(seg), 'sla_res_due', '', 'sla_res_warn_at', '')
  redis.call('ZADD', R.key('sla', 'schedule'), now, conv .. '|res')
end
-- The message JSON is built in C without the conversation id (unknown
-- until now); splice it in as the first member.
local message = '{"conversation_id":"' .. conv .. '",' .. string.sub(ARGV[4], 2)
if priority ~= ARGV[11] and new == 1 then
  -- Routed as a returning customer: the message carries that priority.
  -- Inside JSON string values quotes are escaped, so this pattern can
  -- only match the top-level member.
  message = string.gsub(message, '"priority":"%a+"', '"priority":"' .. priority .. '"', 1)
end
local log_id = redis.call('XADD', log_key, '*', 'message_id', ARGV[3], 'direction', 'in',
  'message', message)
if ARGV[5] == 'chat' then
  -- Every daemon holding a socket of this conversation (other tabs of the
  -- visitor) sees it, with its place in the log.
  redis.call('PUBLISH', prefix .. 'chat', '{"type":"message","conversation_id":"' .. conv ..
    '","id":"' .. log_id .. '","direction":"in","message":' .. message .. '}')
end

local mode = ''
if new == 1 then
  local sticky = redis.call('HGET', customer_key, 'last_agent') or ''
  redis.call('SET', KEYS[2], conv)
  redis.call('HSET', conv_key,
    'id', conv, 'channel', ARGV[5], 'provider', ARGV[6],
    'customer_id', ARGV[7], 'customer_name', ARGV[8], 'customer_handle', ARGV[9],
    'customer_key', customer_key, 'vip', ARGV[19], 'returning', returning,
    'status', 'open', 'queue', queue, 'priority', priority, 'rule', rule,
    'language', ARGV[17], 'skills', skills, 'sticky_agent', sticky, 'declined', '[]',
    'created_at', now, 'updated_at', now, 'last_inbound_at', now, 'message_count', 1,
    'cycle_started_at', now, 'awaiting_since', now, 'awaiting_kind', 'first_response')
  redis.call('HINCRBY', customer_key, 'conversations', 1)
  if ARGV[26] == '1' then
    -- Sent by a machine: an acknowledgement or survey could start a mail
    -- loop.
    redis.call('HSET', conv_key, 'sla_ack', 'skipped: auto-submitted', 'auto_submitted', '1')
  end
  if policy ~= '' then
    redis.call('HSET', conv_key, 'sla_policy', policy)
    start_clock('fr')
    start_clock('res')
  end
  redis.call('HSETNX', customer_key, 'first_seen', now)
  redis.call('HSET', customer_key, 'last_conversation', conv)
  c = R.hash(conv_key)
  R.conv_event(now, emax, 'conversation.opened', c, {'message_id', ARGV[3], 'by', 'customer',
    'language', ARGV[17], 'rule', rule})
  mode = R.enqueue(c, queue, {now = now, maxlen = emax, qmax = qmax, kind = 'new',
    by = 'customer', reason = rule ~= '' and ('rule ' .. rule) or 'default route',
    message = message}).mode
else
  if bind then redis.call('SET', KEYS[2], conv) end
  redis.call('HSET', conv_key, 'updated_at', now, 'last_inbound_at', now)
  if ARGV[8] ~= '' then redis.call('HSET', conv_key, 'customer_name', ARGV[8]) end
  redis.call('HINCRBY', conv_key, 'message_count', 1)
  R.conv_event(now, emax, 'message.received', c, {'message_id', ARGV[3], 'by', 'customer'})
  if c.status ~= 'resolved' and c.awaiting_customer == '1' then
    -- The customer answered an agent's reply (whatever happened to the
    -- conversation since: a transfer, a reply while it was still queued):
    -- next response is due, the paused resolution clock resumes, and the
    -- customer's wait for the next answer starts (KPI).
    redis.call('HSET', conv_key, 'awaiting_customer', '0')
    if (c.awaiting_since or '') == '' then
      redis.call('HSET', conv_key, 'awaiting_since', now, 'awaiting_kind', 'next_response')
    end
    if (c.sla_policy or '') ~= '' then
      start_clock('nr')
      if c.sla_res_state == 'paused' then resume_resolution() end
    end
  end
  if c.status == 'assigned' or c.status == 'waiting' then
    R.inbox(c.agent_id, 'message', c, now, {'message_id', ARGV[3], 'message', message})
    if c.status == 'waiting' then
      redis.call('HSET', conv_key, 'status', 'assigned')
      R.conv_event(now, emax, 'conversation.customer_replied', c,
        {'agent_id', c.agent_id, 'by', 'customer', 'reason', 'new customer message'})
    end
  elseif c.status == 'resolved' and c.csat_state == 'asked' and rating then
    -- The answer to the survey: recorded, and the conversation stays
    -- resolved.
    redis.call('HSET', conv_key, 'csat_state', 'answered', 'csat_score', rating,
      'csat_answered_at', now)
    redis.call('HINCRBY', R.key('stats', 'csat'),
      (c.channel or '') .. '|' .. (c.queue or '') .. '|' .. rating, 1)
    R.conv_event(now, emax, 'conversation.rated', c, {'score', rating,
      'agent_id', c.agent_id or '', 'by', 'customer', 'message_id', ARGV[3]})
  elseif c.status == 'resolved' then
    -- Reopened: back to its queue, preferring the agent who resolved it.
    redis.call('HSET', conv_key, 'sticky_agent', c.agent_id or '', 'declined', '[]',
      'resolved_at', '')
    redis.call('HINCRBY', conv_key, 'reopened', 1)
    redis.call('HSET', conv_key, 'cycle_started_at', now, 'awaiting_since', now,
      'awaiting_kind', 'next_response', 'awaiting_customer', '0')
    if c.csat_state == 'asked' then redis.call('HSET', conv_key, 'csat_state', 'expired') end
    if (c.sla_policy or '') ~= '' then
      start_clock('nr')
      start_clock('res')
    end
    c.sticky_agent, c.declined = c.agent_id or '', '[]'
    R.conv_event(now, emax, 'conversation.reopened', c, {'message_id', ARGV[3], 'by', 'customer',
      'agent_id', c.agent_id or '', 'reason', 'new customer message'})
    mode = R.enqueue(c, queue, {now = now, maxlen = emax, qmax = qmax, kind = 'reopened',
      by = 'customer', reason = 'new customer message', message = message}).mode
  end
end

-- What a reply needs to thread on the customer's side.
redis.call('HSET', conv_key, 'last_in_external_id', ARGV[28] or '')
if (ARGV[29] or '') ~= '' then redis.call('HSETNX', conv_key, 'thread_ref', ARGV[29]) end
if (ARGV[30] or '') ~= '' then redis.call('HSETNX', conv_key, 'subject', ARGV[30]) end

redis.call('SET', KEYS[1], conv .. ' ' .. ARGV[3] .. ' ' .. queue .. ' ' .. log_id, 'EX', ARGV[14])

return {'stored', conv, ARGV[3], queue, new, mode, log_id}
