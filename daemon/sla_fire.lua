-- sla_fire.lua — fire the SLA warnings and breaches that are due
-- (daemon/sla.c). routing.lua is prepended (R). Each is claimed by removing
-- it from the due set inside this script, so with several daemons and
-- across restarts every one fires exactly once.
--
-- ARGV: 1 prefix, 2 now (ms), 3 most, 4 events maxlen, 5 queue maxlen
-- Returns {{member, due, lag ms}, ...} fired, then the next due time (or -1)
-- as the last element, and queues to dispatch as {'kick', q, ...}.

local now, emax, qmax = ARGV[2], ARGV[4], ARGV[5]
local nnow = tonumber(now)
local due_key = R.key('sla', 'due')
local NAMES = {fr = 'first_response', nr = 'next_response', res = 'resolution'}
local fired, kick = {}, {'kick'}

local items = redis.call('ZRANGEBYSCORE', due_key, '-inf', now, 'WITHSCORES', 'LIMIT', 0, ARGV[3])
for i = 1, #items, 2 do
  local member, due = items[i], items[i + 1]
  redis.call('ZREM', due_key, member)
  local id, clock, phase = string.match(member, '^(.+)|(%a+)|(%a+)$')
  if not id then id, clock, phase = '', 'none', 'none' end -- not ours: dropped
  local ck = R.conv_key(id)
  local c = id ~= '' and R.hash(ck) or {}
  -- Once per run: a resumed resolution clock keeps its warning and breach.
  local done = c['sla_' .. clock .. (phase == 'warn' and '_warned' or '_breached')] == '1'
  if c.id and c['sla_' .. clock .. '_state'] == 'running' and not done then
    local lag = nnow - tonumber(due)
    local fields = {'clock', NAMES[clock] or clock, 'policy', c.sla_policy or '',
      'due', c['sla_' .. clock .. '_due'] or '', 'agent_id', c.agent_id or '',
      'status', c.status or '', 'lag_ms', lag, 'by', 'omnirouted'}
    if phase == 'warn' then
      redis.call('HSET', ck, 'sla_' .. clock .. '_warned', '1')
      R.conv_event(now, emax, 'sla.warning', c, fields)
    else
      redis.call('HSET', ck, 'sla_' .. clock .. '_breached', '1')
      R.conv_event(now, emax, 'sla.breached', c, fields)
      -- Escalation: at least the policy's priority; waiting work moves to
      -- the escalation queue, keeping its place in time.
      local pol = R.hash(R.key('sla', 'policy', c.sla_policy or ''))
      local want = pol.escalate_priority or 'high'
      local pri = c.priority or 'normal'
      if (R.RANK[want] or 0) > (R.RANK[pri] or 0) then pri = want end
      local to = (pol.escalation_queue and pol.escalation_queue ~= '') and pol.escalation_queue
        or c.queue
      local from_q, from_p = c.queue, c.priority
      if c.status == 'open' or c.status == 'offered' then
        if pri ~= from_p or to ~= from_q then
          R.release(c)
          redis.call('ZREM', R.key('queue', from_q, 'waiting'), id)
          c.priority = pri
          redis.call('HSET', ck, 'priority', pri)
          local conf = R.enqueue(c, to, {now = now, maxlen = emax, qmax = qmax,
            kind = 'escalated', keep_age = true, by = 'omnirouted',
            reason = NAMES[clock] .. ' breached'})
          if conf.mode == 'push' then kick[#kick + 1] = to end
        end
      elseif pri ~= from_p then
        redis.call('HSET', ck, 'priority', pri)
        c.priority = pri
      end
      if pri ~= from_p or to ~= from_q then
        R.conv_event(now, emax, 'conversation.escalated', c, {'from_queue', from_q,
          'from_priority', from_p, 'agent_id', c.agent_id or '', 'by', 'omnirouted',
          'reason', NAMES[clock] .. ' breached'})
      end
    end
    fired[#fired + 1] = {member, due, lag}
  end
end
local nxt = redis.call('ZRANGE', due_key, 0, 0, 'WITHSCORES')
fired[#fired + 1] = nxt[2] and tonumber(nxt[2]) or -1
fired[#fired + 1] = kick
return fired
