-- assign.lua — offer a push queue's waiting conversations to agents
-- (daemon/assign.c). routing.lua is prepended (R).
--
-- Decide and claim in one script: with several daemons sharing Redis, two
-- of them can run this for one queue at the same moment; Redis runs the
-- scripts one after the other, and the second sees what the first did.
--
-- ARGV: 1 prefix, 2 queue, 3 now (ms), 4 most offers to make, 5 events maxlen,
--       6 how many waiting conversations to look at
-- Returns {offers made, 1 when it stopped at the limit with work left}

local q, now, limit, emax = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local conf = R.queue_conf(q)
if conf.mode ~= 'push' then return {0, 0} end
local wkey = R.key('queue', q, 'waiting')
if redis.call('ZCARD', wkey) == 0 then return {0, 0} end

local agents, nnow = {}, tonumber(now)
for _, id in ipairs(redis.call('SMEMBERS', R.key('queue', q, 'agents'))) do
  local a = R.agent(id)
  if a and a.presence == 'online' and a.presence_expires_at > nnow then agents[#agents + 1] = a end
end
if #agents == 0 then return {0, 0} end

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
local made = 0
-- In line order: priority band, then age (the waiting set's score).
for _, id in ipairs(redis.call('ZRANGE', wkey, 0, tonumber(ARGV[6]) - 1)) do
  if made >= limit then return {made, 1} end
  if not any_room() then break end
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
      if not a then
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
    end
  end
end
return {made, 0}
