-- sweep.lua — the timeouts of assignment, run by every daemon once a
-- second (daemon/assign.c). routing.lua is prepended (R). Each expiry is
-- claimed by removing it from its sorted set inside this script, so with
-- several daemons every one fires exactly once.
--
-- ARGV: 1 prefix, 2 now (ms), 3 events maxlen, 4 queue maxlen
-- Returns the push queues that got work back (to dispatch).

local now, emax, qmax = ARGV[2], ARGV[3], ARGV[4]
local nnow = tonumber(now)
local opts = {now = now, maxlen = emax, qmax = qmax, by = 'omnirouted'}
local kick, seen = {}, {}
local function want(q, mode)
  if mode == 'push' and not seen[q] then
    seen[q] = true
    kick[#kick + 1] = q
  end
end

-- 1. Presence whose heartbeats stopped: offline, and its offers go back.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', R.key('presence'), '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', R.key('presence'), id)
  local ak = R.key('agent', id)
  local before = redis.call('HGET', ak, 'presence')
  if before then
    redis.call('HSET', ak, 'presence', 'offline', 'presence_expires_at', 0,
      'presence_since', now, 'presence_updated_at', now)
    R.event(now, emax, {'type', 'agent.presence', 'agent_id', id, 'from', before, 'to', 'offline',
      'by', 'omnirouted', 'reason', 'heartbeat timeout'})
    for _, cid in ipairs(redis.call('ZRANGE', R.key('offers'), 0, -1)) do
      local c = R.hash(R.conv_key(cid))
      if c.status == 'offered' and c.offer_agent == id then
        R.release(c)
        R.add_declined(c, id, now)
        R.conv_event(now, emax, 'conversation.offer_withdrawn', c, {'agent_id', id,
          'by', 'omnirouted', 'reason', 'agent offline (heartbeat timeout)'})
        want(c.queue, R.enqueue(c, c.queue, {now = now, maxlen = emax, qmax = qmax,
          kind = 'requeued', keep_age = true, by = 'omnirouted',
          reason = 'agent offline'}).mode)
      end
    end
  end
end

-- 2. Offers not accepted in time: the next agent gets a turn.
for _, cid in ipairs(redis.call('ZRANGEBYSCORE', R.key('offers'), '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', R.key('offers'), cid)
  local c = R.hash(R.conv_key(cid))
  if c.status == 'offered' then
    local agent = c.offer_agent or ''
    R.release(c)
    R.add_declined(c, agent, now)
    R.conv_event(now, emax, 'conversation.offer_expired', c, {'agent_id', agent,
      'by', 'omnirouted', 'reason', 'not accepted within offer_timeout'})
    want(c.queue, R.enqueue(c, c.queue, {now = now, maxlen = emax, qmax = qmax,
      kind = 'requeued', keep_age = true, by = 'omnirouted',
      reason = 'offer to ' .. agent .. ' expired'}).mode)
  end
end

-- 3. Pull claims never accepted within claim_timeout: the claimant's
-- capacity is freed and the entry goes back to the group, keeping its
-- place (the next claim takes it; see claim.lua).
for _, q in ipairs(redis.call('SMEMBERS', R.key('queues'))) do
  local conf = R.queue_conf(q)
  if conf.mode == 'pull' then
    for _, band in ipairs(R.BANDS) do
      local key = R.key('queue', q, band)
      -- Per claimant: entries handed back (consumer _returned) wait for
      -- the next claim and must not crowd out the claims that expire.
      local pending = {}
      if redis.call('EXISTS', key) == 1 then
        for _, cons in ipairs(redis.call('XINFO', 'CONSUMERS', key, 'agents')) do
          local name
          for i = 1, #cons, 2 do if cons[i] == 'name' then name = cons[i + 1] end end
          if name and name ~= '_returned' then
            for _, p in ipairs(redis.call('XPENDING', key, 'agents', 'IDLE', conf.claim_timeout,
                '-', '+', 100, name)) do
              pending[#pending + 1] = p
            end
          end
        end
      end
      do
        for _, p in ipairs(pending) do
          local e = redis.call('XRANGE', key, p[1], p[1])[1]
          local cid = ''
          if e then
            for i = 1, #e[2], 2 do if e[2][i] == 'conversation_id' then cid = e[2][i + 1] end end
          end
          local c = R.hash(R.conv_key(cid))
          if c.id and c.work_id == p[1] and c.status == 'assigned' and c.accepted == '0' then
            local agent = R.release(c)
            R.conv_event(now, emax, 'conversation.claim_expired', c, {'agent_id', agent,
              'by', 'omnirouted', 'reason', 'not accepted within claim_timeout'})
            redis.call('HSET', R.conv_key(cid), 'status', 'open', 'agent_id', '',
              'updated_at', now)
            redis.call('ZADD', R.key('queue', q, 'waiting'),
              R.waiting_score(c.priority, c.enqueued_at), cid)
            R.return_work(key, p[1], conf.claim_timeout)
          elseif p[2] ~= '_returned' and not (c.id and c.work_id == p[1] and c.status == 'open') then
            redis.call('XACK', key, 'agents', p[1]) -- settled elsewhere
          end
        end
      end
    end
  end
end

-- 4. Every push queue with waiting work: an agent may have freed up on
-- another daemon.
for _, q in ipairs(redis.call('SMEMBERS', R.key('queues'))) do
  if redis.call('ZCARD', R.key('queue', q, 'waiting')) > 0 then
    want(q, R.queue_conf(q).mode)
  end
end
return kick
