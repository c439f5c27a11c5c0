-- claim.lua — an agent asks for its next conversation (POST
-- /v1/agents/{id}/claim, `omniroutectl next`). routing.lua is prepended (R).
--
-- First the agent's oldest pending offer (push queues) is accepted; else
-- the next conversation of its pull queues that it can take: the highest
-- priority band first, the longest-waiting within it. A pull entry the
-- agent cannot take (skills, capacity) goes back to the group at once,
-- keeping its place; a claimed entry stays pending until the agent accepts
-- (accept, reply, resolve, transfer), so a claim whose agent vanished is
-- taken by the next claim after the queue's claim_timeout.
--
-- ARGV: 1 prefix, 2 agent id, 3 now (ms), 4 events maxlen
-- Returns {'claimed', conversation id, via (offer|pull), conversation hash (flat)}
--       | {'none'} | {'no_agent'}

local me, now, emax = ARGV[2], ARGV[3], ARGV[4]
local a = R.agent(me)
if not a then return {'no_agent'} end
local opts = {now = now, maxlen = emax, by = me}

-- 1. Offers made to this agent, the one expiring first.
for _, id in ipairs(redis.call('ZRANGE', R.key('offers'), 0, -1)) do
  local c = R.hash(R.conv_key(id))
  if c.status == 'offered' and c.offer_agent == me then
    R.mark_assigned(c, me, 'push', opts, a.load[c.channel], R.capacity(a, c.channel))
    return {'claimed', id, 'offer', redis.call('HGETALL', R.conv_key(id))}
  end
end

-- A pull entry is live while its conversation still points at it and
-- nobody has accepted it.
local function live(c, key, id)
  return c.work_key == key and c.work_id == id
    and (c.status == 'open' or (c.status == 'assigned' and c.accepted == '0'))
end

-- The conversation a stream entry (its field list) stands for.
local function entry_conv(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'conversation_id' then return R.hash(R.conv_key(fields[i + 1])) end
  end
  return {}
end

local sel = {now = tonumber(now), match_language = true}
-- Claiming is an explicit request: presence does not gate it (an agent on
-- `away` may still pull), capacity and skills do.
a.presence, a.presence_expires_at = 'online', math.huge

-- ignore_declined: the second pass, when every candidate had been
-- declined by this agent before (it is still better than stranding it).
local ignore_declined = false
local function fits(c, conf)
  sel.match_language = conf.match_language
  local view = R.conv_view(c)
  if ignore_declined then view.declined = {} end
  return R.unfit(a, view, sel) == nil
end

-- How far one claim looks, so that a claim stays a bounded script however
-- long a backlog is: expired or returned claims (paged), then undelivered
-- entries (docs/routing.md, "Limits").
-- Pages start small and double: the first entry usually fits, and a
-- claim reads only what it needs (benchmark: reading 200 entries at once
-- was most of a claim's cost).
local PENDING_PAGE, PENDING_MAX, UNDELIVERED_MAX = 100, 1000, 200
local FIRST_PAGE = 8

-- Best candidate in one stream: the oldest expired or returned claim, else
-- the oldest undelivered entry. Returns {key, id, conv, skip} where skip is
-- the number of undelivered entries in front of it (nil for a pending one).
local function candidate(key, conf)
  if redis.call('EXISTS', key) == 0 then return nil end
  local from, seen, size = '-', 0, FIRST_PAGE
  while seen < PENDING_MAX do
    local page = redis.call('XPENDING', key, 'agents', 'IDLE', conf.claim_timeout, from, '+',
      size)
    for _, p in ipairs(page) do
      local id = p[1]
      local e = redis.call('XRANGE', key, id, id)[1]
      local c = e and entry_conv(e[2]) or {}
      if not (c.id and live(c, key, id)) then
        redis.call('XACK', key, 'agents', id)
      elseif (c.status ~= 'assigned' or c.agent_id ~= me) and fits(c, conf) then
        return {key, id, c, nil}
      end
    end
    seen = seen + #page
    if #page < size then break end
    from = '(' .. page[#page][1]
    size = math.min(size * 2, PENDING_PAGE)
  end
  local last = '0-0'
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local h = {}
    for i = 1, #g, 2 do h[g[i]] = g[i + 1] end
    if h.name == 'agents' then last = h['last-delivered-id'] end
  end
  local skip, dead, size, after = 0, 0, FIRST_PAGE, last
  while skip < UNDELIVERED_MAX do
    local page = redis.call('XRANGE', key, '(' .. after, '+', 'COUNT',
      math.min(size, UNDELIVERED_MAX - skip))
    for _, e in ipairs(page) do
      local c = entry_conv(e[2])
      local alive = c.id and live(c, key, e[1])
      if alive and fits(c, conf) then return {key, e[1], c, skip} end
      if not alive and dead == skip then dead = dead + 1 end
      skip = skip + 1
    end
    if #page < size then break end
    after = page[#page][1]
    size = size * 2
  end
  if dead > 0 then
    -- Entries at the head whose conversations moved on (resolved or
    -- transferred while waiting): settle them so they never fill the
    -- window for anyone.
    for _, e in ipairs(redis.call('XREADGROUP', 'GROUP', 'agents', '_settled', 'COUNT', dead,
        'STREAMS', key, '>')[1][2]) do
      redis.call('XACK', key, 'agents', e[1])
    end
    redis.call('XGROUP', 'DELCONSUMER', key, 'agents', '_settled')
  end
  return nil
end

local pull = {}
for _, q in ipairs(a.queues) do
  local conf = R.queue_conf(q)
  if conf.mode == 'pull' then pull[#pull + 1] = conf end
end

local function search()
  for _, band in ipairs(R.BANDS) do
    local best, best_conf
    for _, conf in ipairs(pull) do
      local cand = candidate(R.key('queue', conf.name, band), conf)
      if cand and (not best or tonumber(cand[3].enqueued_at) < tonumber(best[3].enqueued_at)) then
        best, best_conf = cand, conf
      end
    end
    if best then return best, best_conf end
  end
  return nil, nil
end

local best, best_conf = search()
if not best then
  ignore_declined = true
  best, best_conf = search()
end
if best then
  local key, id, c, skip = best[1], best[2], best[3], best[4]
  if skip == nil then
    redis.call('XCLAIM', key, 'agents', me, 0, id)
  else
    -- Deliver up to the chosen entry; the ones in front of it go back
    -- (still live: another agent may take them) or are settled (stale).
    for _, e in ipairs(redis.call('XREADGROUP', 'GROUP', 'agents', me, 'COUNT', skip + 1,
        'STREAMS', key, '>')[1][2]) do
      if e[1] ~= id then
        if live(entry_conv(e[2]), key, e[1]) then
          R.return_work(key, e[1], best_conf.claim_timeout)
        else
          redis.call('XACK', key, 'agents', e[1])
        end
      end
    end
  end
  if c.status == 'assigned' then
    -- The previous claimant never accepted within claim_timeout.
    R.release(c)
    R.conv_event(now, emax, 'conversation.claim_expired', c, {'agent_id', c.agent_id,
      'by', 'omnirouted', 'reason', 'not accepted within claim_timeout'})
  end
  R.give(c, a, 'pull', 0, opts)
  return {'claimed', c.id, 'pull', redis.call('HGETALL', R.conv_key(c.id))}
end
return {'none'}
