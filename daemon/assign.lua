-- assign.lua — offer a push queue's waiting conversations to agents
-- (daemon/assign.c). routing.lua is prepended (R).
--
-- Decide and claim in one script: with several daemons sharing Redis, two
-- of them can run this for one queue at the same moment; Redis runs the
-- scripts one after the other, and the second sees what the first did.
--
-- ARGV: 1 prefix, 2 queue, 3 now (ms), 4 most offers to make, 5 events maxlen,
--       6 how many waiting conversations to look at, 7 where to start in line
-- Returns {offers made, 1 when there is more to look at, next start}: a long
-- line nobody can take yet is walked a page per call, so the work behind it
-- is still found.

local q, now, limit, emax = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local conf = R.queue_conf(q)
if conf.mode ~= 'push' then return {0, 0, 0} end
local wkey = R.key('queue', q, 'waiting')
if redis.call('ZCARD', wkey) == 0 then return {0, 0, 0} end

local agents, nnow = {}, tonumber(now)
for _, id in ipairs(redis.call('SMEMBERS', R.key('queue', q, 'agents'))) do
  local a = R.agent(id)
  if a and a.presence == 'online' and a.presence_expires_at > nnow then agents[#agents + 1] = a end
end
if #agents == 0 then return {0, 0, 0} end

local function any_room()
  for _, a in ipairs(agents) do
    for ch, _ in pairs(a.cap) do if R.room(a, ch) > 0 then return true end end
  end
  return false
end

local rr_key = R.key('queue', q, 'rr')
local sel = {now = nnow, strategy = conf.strategy, sticky = conf.sticky,
  match_language = conf.match_language, rr_last = redis.call('GET', rr_key) or nil}
local opts = {now = now, maxlen = emax, by = 'omnirouted'}
local made, kept = 0, 0
local start, page = tonumber(ARGV[7]), tonumber(ARGV[6])
-- Going round again to the agent who declined last waits one offer_timeout,
-- so a decline is not answered by the same offer at once.
local again_after = math.max(conf.offer_timeout, 1000)
-- In line order: priority band, then age (the waiting set's score).
local ids = redis.call('ZRANGE', wkey, start, start + page - 1)
for _, id in ipairs(ids) do
  if made >= limit then return {made, 1, start + kept} end
  if not any_room() then return {made, 0, 0} end
  local c = R.hash(R.conv_key(id))
  if c.status ~= 'open' or c.queue ~= q then
    redis.call('ZREM', wkey, id) -- stale: moved or taken since it was queued
  else
    local view = R.conv_view(c)
    local a = R.select(agents, view, sel)
    if not a and next(view.declined) then
      -- Everyone who fits has declined or let an offer lapse: go round
      -- again, to someone other than the last one if possible.
      local d = R.list(c.declined)
      view.declined = {[d[#d]] = true}
      a = R.select(agents, view, sel)
      if not a and nnow - (tonumber(c.declined_at or 0) or 0) >= again_after then
        view.declined = {}
        a = R.select(agents, view, sel)
      end
      if a then
        c.declined = '[]'
        redis.call('HSET', R.conv_key(id), 'declined', '[]')
      end
    end
    if a then
      R.give(c, a, 'push', conf.offer_timeout, opts)
      if conf.strategy == 'round_robin' then
        redis.call('SET', rr_key, a.id)
        sel.rr_last = a.id
      end
      made = made + 1
    else
      kept = kept + 1
    end
  end
end
if #ids == page then return {made, 1, start + kept} end
return {made, 0, 0}
