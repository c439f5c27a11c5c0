-- conv_action.lua — an agent (or supervisor) acts on a conversation:
-- accept, decline, resolve, transfer (daemon/agents_api.c). routing.lua is
-- prepended (R). Every change appends to the events stream: who, when, why.
--
-- ARGV: 1 prefix, 2 action, 3 conversation id, 4 acting agent id, 5 reason,
--       6 now (ms), 7 events maxlen, 8 queue maxlen,
--       9 target queue (transfer), 10 target agent (transfer)
-- action 'show' reads: {'ok', status, '', hash, last 100 log entries newest first}
-- Returns {'ok', status, kick, conversation hash (flat)} | {'error', code, detail}
-- where kick names a push queue to dispatch, '@<agent>' (capacity freed) or ''

local action, id, who, reason = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, emax, qmax = ARGV[6], ARGV[7], ARGV[8]
local c = R.hash(R.conv_key(id))
if not c.id then return {'error', 'unknown_conversation', 'no conversation ' .. id} end
local opts = {now = now, maxlen = emax, qmax = qmax, by = who}
local ck = R.conv_key(id)

-- Every success answers with the conversation as it is now.
local function ok(status, kick)
  return {'ok', status, kick, redis.call('HGETALL', ck)}
end

if action == 'show' then
  local log = redis.call('XREVRANGE', ck .. ':log', '+', '-', 'COUNT', 100)
  return {'ok', c.status, '', redis.call('HGETALL', ck), log}
end

local function holder()
  if c.status == 'offered' then return c.offer_agent or '' end
  if c.status == 'assigned' or c.status == 'waiting' then return c.agent_id or '' end
  return ''
end

-- Actions are taken by a registered agent (show needs none), or in the
-- name of the holder — also one since removed, so an operator can still
-- resolve or transfer what a departed agent held.
if action ~= 'show' and not R.agent(who) and (who == '' or holder() ~= who) then
  return {'error', 'unknown_agent', 'no agent ' .. who .. ' (the acting agent_id)'}
end

if action == 'accept' then
  if c.status == 'offered' and c.offer_agent == who then
    local a = R.agent(who)
    R.mark_assigned(c, who, 'push', opts, a and a.load[c.channel] or '',
      a and R.capacity(a, c.channel) or '')
    return ok('assigned', '')
  end
  if (c.status == 'assigned' or c.status == 'waiting') and c.agent_id == who then
    R.ack_work(c) -- idempotent; confirms a pull claim
    return ok(c.status, '')
  end
  if c.status == 'open' and R.queue_conf(c.queue).mode == 'pull' then
    -- A tool that read the queue stream itself (XREADGROUP) takes it.
    local a = R.agent(who)
    if not a then return {'error', 'unknown_agent', 'no agent ' .. who} end
    if R.room(a, c.channel) <= 0 then
      return {'error', 'at_capacity', who .. ' has no room for another ' .. c.channel ..
        ' conversation'}
    end
    R.give(c, a, 'pull', 0, opts)
    R.ack_work(c)
    return ok('assigned', '')
  end
  return {'error', 'not_offered', 'conversation ' .. id .. ' is ' .. c.status ..
    (holder() ~= '' and (' with ' .. holder()) or '') .. ', not offered to ' .. who}
end

if action == 'decline' then
  if holder() ~= who or (c.status ~= 'offered' and c.accepted ~= '0') then
    return {'error', 'not_offered', 'conversation ' .. id .. ' is not offered to ' .. who}
  end
  R.release(c)
  R.add_declined(c, who, now)
  R.conv_event(now, emax, 'conversation.declined', c, {'agent_id', who, 'by', who,
    'reason', reason})
  if c.status == 'assigned' and c.work_key ~= '' then
    -- A pull claim handed back: same entry, same place in line.
    local conf = R.queue_conf(c.queue)
    redis.call('HSET', ck, 'status', 'open', 'agent_id', '', 'updated_at', now)
    redis.call('ZADD', R.key('queue', c.queue, 'waiting'),
      R.waiting_score(c.priority, c.enqueued_at), id)
    R.return_work(c.work_key, c.work_id, conf.claim_timeout)
    return ok('open', '')
  end
  local conf = R.enqueue(c, c.queue, {now = now, maxlen = emax, qmax = qmax, kind = 'declined',
    keep_age = true, by = who, reason = reason})
  return ok('open', conf.mode == 'push' and c.queue or '')
end

if action == 'resolve' then
  if c.status == 'resolved' then return ok('resolved', '') end
  local h = holder()
  if h ~= '' and h ~= who then
    return {'error', 'not_yours', 'conversation ' .. id .. ' is with ' .. h}
  end
  R.ack_work(c)
  R.release(c)
  redis.call('ZREM', R.key('queue', c.queue, 'waiting'), id)
  -- SLA: every clock stops; resolution is hit unless it breached or is due
  -- already (docs/sla.md).
  local res_outcome = nil
  for _, clock in ipairs({'fr', 'nr', 'res'}) do
    local st = c['sla_' .. clock .. '_state']
    if st == 'running' or st == 'paused' then
      local due = tonumber(c['sla_' .. clock .. '_due'] or '')
      local missed = c['sla_' .. clock .. '_breached'] == '1'
        or (st == 'running' and due and tonumber(now) > due)
      local final = clock == 'res' and (missed and 'missed' or 'hit') or 'stopped'
      if clock ~= 'res' and missed then final = 'missed' end
      redis.call('HSET', ck, 'sla_' .. clock .. '_state', final,
        'sla_' .. clock .. '_stopped_at', now)
      -- Attainment counts response clocks at the agent's reply only.
      if clock == 'res' then res_outcome = final end
    end
    redis.call('ZREM', R.key('sla', 'due'), id .. '|' .. clock .. '|warn', id .. '|' .. clock .. '|breach')
    redis.call('ZREM', R.key('sla', 'schedule'), id .. '|' .. clock)
  end
  redis.call('HSET', ck, 'status', 'resolved', 'resolved_at', now, 'resolved_by', who,
    'agent_id', h ~= '' and h or who, 'updated_at', now)
  if c.customer_key and c.customer_key ~= '' and h ~= '' then
    redis.call('HSET', c.customer_key, 'last_agent', h)
  end
  R.conv_event(now, emax, 'conversation.resolved', c, {'agent_id', h ~= '' and h or who,
    'by', who, 'reason', reason})
  -- KPIs last: the conversation is consistent whatever they do.
  R.observe('resolution', c.channel, c.queue,
    tonumber(now) - tonumber(c.cycle_started_at or c.created_at or now))
  if res_outcome then R.attain('res', c.channel, c.queue, res_outcome) end
  -- Satisfaction survey (docs/sla.md): one question, answered 1-5; never
  -- to a machine sender.
  local survey = R.csat_text(c.language, c.channel)
  if survey and (c.csat_state or '') ~= 'asked' and c.auto_submitted ~= '1' then
    local rid = R.say(id, survey, 'csat', now)
    redis.call('HSET', ck, 'csat_state', 'asked', 'csat_asked_at', now, 'csat_reply', rid)
  end
  -- The agent's capacity is free again: its push queues may have work.
  return ok('resolved', h ~= '' and ('@' .. h) or '')
end

if action == 'transfer' then
  local to_queue, to_agent = ARGV[9], ARGV[10]
  if c.status == 'resolved' then
    return {'error', 'resolved', 'conversation ' .. id .. ' is resolved'}
  end
  local from = holder()
  if from ~= '' and from ~= who then
    return {'error', 'not_yours', 'conversation ' .. id .. ' is with ' .. from}
  end
  if to_agent ~= '' then
    local a = R.agent(to_agent)
    if not a then return {'error', 'unknown_agent', 'no agent ' .. to_agent} end
    if a.id == from then return {'error', 'same_agent', id .. ' is already with ' .. from} end
    if R.room(a, c.channel) <= 0 then
      return {'error', 'at_capacity', to_agent .. ' has no room for another ' .. c.channel ..
        ' conversation'}
    end
    R.ack_work(c)
    R.release(c)
    R.conv_event(now, emax, 'conversation.transferred', c, {'agent_id', from, 'to_agent', to_agent,
      'by', who, 'reason', reason})
    R.give(c, a, 'transfer', 0, opts)
    return ok('assigned', from ~= '' and ('@' .. from) or '')
  end
  local q = to_queue ~= '' and to_queue or c.queue
  R.ack_work(c)
  R.release(c)
  if c.status == 'open' then redis.call('ZREM', R.key('queue', c.queue, 'waiting'), id) end
  R.conv_event(now, emax, 'conversation.transferred', c, {'agent_id', from, 'to_queue', q,
    'by', who, 'reason', reason})
  redis.call('HSET', ck, 'declined', '[]', 'sticky_agent', '')
  c.declined, c.sticky_agent = '[]', ''
  local conf = R.enqueue(c, q, {now = now, maxlen = emax, qmax = qmax, kind = 'transferred',
    by = who, reason = reason})
  -- Dispatch the target queue; the old holder's other queues are kicked by
  -- the periodic pass.
  return ok('open', conf.mode == 'push' and q or '')
end

return {'error', 'bad_action', 'unknown action ' .. action}
