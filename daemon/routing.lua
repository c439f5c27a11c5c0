-- routing.lua — shared by the assignment scripts (prepended to each at build
-- time: Redis scripts cannot load modules). Two parts:
--
-- 1. Pure selection (no redis.call): which agent gets a conversation.
--    Unit-tested with lua5.1 in tests/unit/select_test.lua, the same Lua
--    dialect Redis embeds.
-- 2. Helpers every assignment script shares: reading agents and queue
--    settings, enqueueing, giving a conversation to an agent, releasing it,
--    and appending lifecycle events. They assume Redis runs the calling
--    script alone, so read-decide-write is atomic across daemons.

local R = {}

R.BANDS = {'urgent', 'high', 'normal', 'low'}
R.RANK = {urgent = 3, high = 2, normal = 1, low = 0}
-- Waiting-set score: priority band first, then age. Milliseconds since 1970
-- stay below 2^42 until 2109, so both fit a double's 53-bit mantissa.
local AGE_SPAN = 4398046511104 -- 2^42

function R.waiting_score(priority, enqueued_at)
  return (3 - (R.RANK[priority] or 1)) * AGE_SPAN + tonumber(enqueued_at)
end

-- --- pure selection --------------------------------------------------------

-- "zh" serves "zh" and "zh-Hant"; tags compare case-insensitively.
function R.language_matches(agent_lang, tag)
  local a, t = string.lower(agent_lang), string.lower(tag)
  return t == a or string.sub(t, 1, #a + 1) == a .. '-'
end

function R.capacity(agent, channel)
  return agent.cap[channel] or agent.cap['*'] or 0
end

function R.room(agent, channel)
  return R.capacity(agent, channel) - (agent.load[channel] or 0)
end

-- Why `agent` cannot take `conv` now, or nil when it can.
-- conv: {channel, language ('' or 'und': none needed), skills = {..},
--        declined = {[agent id] = true}}
-- opts: {now, match_language}
function R.unfit(agent, conv, opts)
  if agent.presence ~= 'online' or (agent.presence_expires_at or 0) <= opts.now then
    return 'not online'
  end
  if conv.declined and conv.declined[agent.id] then return 'declined' end
  if R.room(agent, conv.channel) <= 0 then return 'at capacity' end
  local have = {}
  for _, s in ipairs(agent.skills) do have[string.lower(s)] = true end
  for _, s in ipairs(conv.skills or {}) do
    if not have[string.lower(s)] then return 'lacks skill ' .. s end
  end
  local tag = conv.language or ''
  if opts.match_language and tag ~= '' and tag ~= 'und' and #agent.languages > 0 then
    local ok = false
    for _, l in ipairs(agent.languages) do
      if R.language_matches(l, tag) then ok = true break end
    end
    if not ok then return 'does not speak ' .. tag end
  end
  return nil
end

local function load_ratio(a, channel)
  local cap = R.capacity(a, channel)
  return (a.load[channel] or 0) / (cap > 0 and cap or 1)
end

local function idle_first(a, b)
  local x, y = a.last_assigned_at or 0, b.last_assigned_at or 0
  if x ~= y then return x < y end
  return a.id < b.id
end

local ORDER = {
  -- Fewest open conversations on this channel relative to capacity; then
  -- fewest overall; then whoever waited longest for work.
  least_busy = function(channel)
    return function(a, b)
      local x, y = load_ratio(a, channel), load_ratio(b, channel)
      if x ~= y then return x < y end
      if a.load_total ~= b.load_total then return a.load_total < b.load_total end
      return idle_first(a, b)
    end
  end,
  longest_idle = function() return idle_first end,
}

-- The agent (table) to give `conv` to, or nil.
-- opts: {now, strategy, sticky, match_language, rr_last (round_robin: the
--        id picked last in this queue)}
-- conv.sticky_agent: the agent who last served this customer.
function R.select(agents, conv, opts)
  local fit = {}
  for _, a in ipairs(agents) do
    if not R.unfit(a, conv, opts) then
      if opts.sticky and conv.sticky_agent and a.id == conv.sticky_agent then return a end
      fit[#fit + 1] = a
    end
  end
  if #fit == 0 then return nil end
  if opts.strategy == 'round_robin' then
    table.sort(fit, function(a, b) return a.id < b.id end)
    for _, a in ipairs(fit) do
      if not opts.rr_last or a.id > opts.rr_last then return a end
    end
    return fit[1]
  end
  table.sort(fit, (ORDER[opts.strategy] or ORDER.least_busy)(conv.channel))
  return fit[1]
end

-- --- Redis helpers (everything below calls Redis) ---------------------------
if not redis then return R end

local P = ARGV[1] -- every script's ARGV[1] is the key prefix

function R.key(...) return P .. table.concat({...}, ':') end
function R.conv_key(id) return P .. 'conv:{' .. id .. '}' end

local function hash(key)
  local flat = redis.call('HGETALL', key)
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  return h
end
R.hash = hash

local function list(json)
  if not json or json == '' then return {} end
  local ok, v = pcall(cjson.decode, json)
  if ok and type(v) == 'table' then return v end
  return {}
end
R.list = list

function R.agent(id)
  local h = hash(R.key('agent', id))
  if not h.id then return nil end
  local a = {id = id, raw = h, cap = {}, load = {}, load_total = tonumber(h.load or 0) or 0,
    presence = h.presence or 'offline',
    presence_expires_at = tonumber(h.presence_expires_at or 0) or 0,
    last_assigned_at = tonumber(h.last_assigned_at or 0) or 0,
    languages = list(h.languages), skills = list(h.skills), queues = list(h.queues)}
  for k, v in pairs(h) do
    local c = string.match(k, '^cap:(.+)$')
    if c then a.cap[c] = tonumber(v) or 0 end
    c = string.match(k, '^load:(.+)$')
    if c then a.load[c] = tonumber(v) or 0 end
  end
  return a
end

-- Queue settings the daemons publish (daemon/assign.c); a queue nobody
-- declared is pull-mode with defaults.
function R.queue_conf(q)
  local h = hash(R.key('queue', q, 'conf'))
  return {
    name = q,
    mode = h.mode or 'pull',
    strategy = h.strategy or 'least_busy',
    sticky = h.sticky ~= '0',
    match_language = h.match_language ~= '0',
    offer_timeout = tonumber(h.offer_timeout_ms or 0) or 0,
    claim_timeout = tonumber(h.claim_timeout_ms or 300000) or 300000,
  }
end

-- Conversation as the selection sees it.
function R.conv_view(c)
  local declined = {}
  for _, id in ipairs(list(c.declined)) do declined[id] = true end
  return {id = c.id, channel = c.channel, language = c.language or '', skills = list(c.skills),
    declined = declined, sticky_agent = c.sticky_agent}
end

-- KPIs (GET /v1/stats): a duration into the histogram of a metric
-- (first_response, next_response, resolution) per channel and queue.
R.BUCKETS = {30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, 259200}
function R.observe(metric, channel, queue, ms)
  local key = R.key('stats', metric)
  local base = (channel or '') .. '|' .. (queue or '') .. '|'
  local le = '+Inf'
  for _, b in ipairs(R.BUCKETS) do
    if ms <= b * 1000 then le = tostring(b) break end
  end
  redis.call('HINCRBY', key, base .. le, 1)
  redis.call('HINCRBY', key, base .. 'count', 1)
  redis.call('HINCRBY', key, base .. 'sum_ms', ms)
end

-- SLA attainment: a clock that stopped hit or missed.
function R.attain(clock, channel, queue, outcome)
  redis.call('HINCRBY', R.key('stats', 'sla'),
    clock .. '|' .. (channel or '') .. '|' .. (queue or '') .. '|' .. outcome, 1)
end

-- The daemon's own message to the customer (acknowledgement, survey),
-- through the outbound path like an agent reply, as agent "omnirouted".
function R.say(conv_id, text, source, now)
  local id = redis.call('XADD', P .. 'outbox', '*', 'conversation_id', conv_id,
    'agent_id', 'omnirouted', 'text', text, 'source', source)
  redis.call('HSET', R.conv_key(conv_id) .. ':reply:' .. id, 'reply_id', id,
    'conversation_id', conv_id, 'agent_id', 'omnirouted', 'text', text, 'status', 'queued',
    'attempts', 0, 'created_at', now, 'updated_at', now, 'source', source)
  return id
end

-- The survey text for a language (prefix match), else the fallback's;
-- nil when surveys are off or not asked on the channel (social by
-- default: a survey there would be a public post).
function R.csat_text(language, channel)
  local conf = R.hash(R.key('csat', 'conf'))
  if conf.enabled ~= '1' then return nil, conf end
  if channel and conf.channels and not string.find(conf.channels, ',' .. channel .. ',', 1, true) then
    return nil, conf
  end
  -- The longest matching tag wins ("pt-BR" before "pt"), whatever order
  -- the hash returns.
  local lang, best, best_len = string.lower(language or ''), nil, 0
  for k, v in pairs(conf) do
    local l = string.match(k, '^text:(.+)$')
    l = l and string.lower(l)
    if l and (lang == l or string.sub(lang, 1, #l + 1) == l .. '-') and #l > best_len then
      best, best_len = v, #l
    end
  end
  return best or conf['text:' .. (conf.fallback or 'en')], conf
end

function R.event(now, maxlen, fields)
  local args = {'XADD', P .. 'events', 'MAXLEN', '~', maxlen, '*'}
  for i = 1, #fields do args[#args + 1] = fields[i] end
  args[#args + 1] = 'at'
  args[#args + 1] = now
  redis.call(unpack(args))
end

-- What a chat visitor's socket is told of (connectors/chat/chat.c).
local CHAT_PUSH = {['conversation.assigned'] = 'assigned', ['conversation.resolved'] = 'resolved'}

local function conv_event(now, maxlen, typ, c, extra)
  local f = {'type', typ, 'conversation_id', c.id, 'queue', c.queue or '',
    'channel', c.channel or '', 'priority', c.priority or 'normal'}
  for i = 1, #extra do f[#f + 1] = extra[i] end
  R.event(now, maxlen, f)
  if c.channel == 'chat' and CHAT_PUSH[typ] then
    local agent = ''
    for i = 1, #extra - 1, 2 do
      if extra[i] == 'agent_id' then agent = extra[i + 1] end
    end
    if agent == '' and typ == 'conversation.assigned' then agent = c.agent_id or '' end
    redis.call('PUBLISH', P .. 'chat', cjson.encode({type = CHAT_PUSH[typ],
      conversation_id = c.id, agent_id = agent}))
  end
end
R.conv_event = conv_event

local function ensure_group(key)
  if redis.call('EXISTS', key) == 0 then
    redis.call('XGROUP', 'CREATE', key, 'agents', '0', 'MKSTREAM')
  end
end
R.ensure_group = ensure_group

-- Puts conversation `c` (its hash as a table, updated in place) in queue q as
-- waiting work. `keep_age`: an offer that lapsed or was declined keeps its
-- place in line; new, reopened and transferred conversations join at the end.
-- opts: {now, maxlen (events), qmax (stream), kind, by, reason, message}
function R.enqueue(c, q, opts)
  local conf = R.queue_conf(q)
  local now = opts.now
  if not opts.keep_age or not c.enqueued_at or c.enqueued_at == '' then c.enqueued_at = now end
  c.status, c.queue = 'open', q
  local ck = R.conv_key(c.id)
  redis.call('HSET', ck, 'status', 'open', 'queue', q, 'enqueued_at', c.enqueued_at,
    'agent_id', '', 'offer_agent', '', 'updated_at', now)
  redis.call('SADD', P .. 'queues', q)
  redis.call('ZADD', R.key('queue', q, 'waiting'), R.waiting_score(c.priority, c.enqueued_at), c.id)
  if conf.mode == 'pull' then
    local sk = R.key('queue', q, c.priority or 'normal')
    ensure_group(sk)
    local id = redis.call('XADD', sk, 'MAXLEN', '~', opts.qmax, '*',
      'conversation_id', c.id, 'kind', opts.kind, 'channel', c.channel or '',
      'provider', c.provider or '', 'priority', c.priority or 'normal',
      'language', c.language or '', 'skills', c.skills or '[]', 'enqueued_at', c.enqueued_at,
      'message', opts.message or '')
    c.work_key, c.work_id = sk, id
    redis.call('HSET', ck, 'work_key', sk, 'work_id', id)
  else
    c.work_key, c.work_id = '', ''
    redis.call('HSET', ck, 'work_key', '', 'work_id', '')
  end
  conv_event(now, opts.maxlen, 'conversation.queued', c,
    {'kind', opts.kind, 'mode', conf.mode, 'by', opts.by or 'omnirouted', 'reason', opts.reason or ''})
  return conf
end

local function set_load(agent_id, channel, delta)
  local ak = R.key('agent', agent_id)
  if redis.call('EXISTS', ak) == 0 then return 0 end
  local n = redis.call('HINCRBY', ak, 'load:' .. channel, delta)
  local t = redis.call('HINCRBY', ak, 'load', delta)
  -- Never below zero, whatever a hand edit did.
  if n < 0 then redis.call('HSET', ak, 'load:' .. channel, 0) n = 0 end
  if t < 0 then redis.call('HSET', ak, 'load', 0) end
  return n
end
R.set_load = set_load

local function inbox(agent_id, kind, c, now, extra)
  local f = {'XADD', R.key('agent', agent_id, 'inbox'), 'MAXLEN', '~', '10000', '*',
    'kind', kind, 'conversation_id', c.id, 'queue', c.queue or '', 'channel', c.channel or '',
    'priority', c.priority or 'normal', 'at', now}
  for i = 1, #(extra or {}) do f[#f + 1] = extra[i] end
  redis.call(unpack(f))
end
R.inbox = inbox

-- Gives waiting conversation c to agent a (a table from R.agent). `offer_ms`
-- > 0 makes it an offer the agent must accept in time; 0 assigns it.
-- via: push | pull | transfer. Returns the agent's load on the channel.
function R.give(c, a, via, offer_ms, opts)
  local now = opts.now
  local ck = R.conv_key(c.id)
  redis.call('ZREM', R.key('queue', c.queue, 'waiting'), c.id)
  local load = set_load(a.id, c.channel, 1)
  a.load[c.channel] = load
  a.load_total = a.load_total + 1
  local cap = R.capacity(a, c.channel)
  redis.call('HSET', R.key('agent', a.id), 'last_assigned_at', now)
  a.last_assigned_at = tonumber(now)
  if offer_ms > 0 then
    local deadline = tonumber(now) + offer_ms
    redis.call('HSET', ck, 'status', 'offered', 'offer_agent', a.id, 'offer_deadline', deadline,
      'updated_at', now)
    redis.call('ZADD', P .. 'offers', deadline, c.id)
    inbox(a.id, 'offer', c, now, {'deadline', deadline})
    conv_event(now, opts.maxlen, 'conversation.offered', c, {'agent_id', a.id, 'via', via,
      'by', opts.by or 'omnirouted', 'load', load, 'capacity', cap, 'deadline', deadline,
      'language', c.language or '', 'skills', c.skills or '[]'})
    c.status = 'offered'
  else
    R.mark_assigned(c, a.id, via, opts, load, cap)
  end
  return load
end

function R.mark_assigned(c, agent_id, via, opts, load, cap)
  local now = opts.now
  local ck = R.conv_key(c.id)
  redis.call('HSET', ck, 'status', 'assigned', 'agent_id', agent_id, 'offer_agent', '',
    'assigned_at', now, 'accepted', via == 'pull' and '0' or '1', 'updated_at', now)
  if not c.first_assigned_at or c.first_assigned_at == '' then
    redis.call('HSET', ck, 'first_assigned_at', now)
  end
  redis.call('ZREM', P .. 'offers', c.id)
  if c.customer_key and c.customer_key ~= '' then
    redis.call('HSET', c.customer_key, 'last_agent', agent_id, 'last_conversation', c.id)
  end
  inbox(agent_id, 'assigned', c, now, {'via', via})
  conv_event(now, opts.maxlen, 'conversation.assigned', c, {'agent_id', agent_id, 'via', via,
    'by', opts.by or 'omnirouted', 'load', load or '', 'capacity', cap or '',
    'language', c.language or '', 'skills', c.skills or '[]'})
  c.status, c.agent_id = 'assigned', agent_id
end

-- Acknowledges the pull-queue entry behind c, if any: the agent has taken
-- the conversation for good (accepted, replied, resolved or transferred).
function R.ack_work(c)
  if c.work_key and c.work_key ~= '' and c.work_id and c.work_id ~= '' then
    redis.call('XACK', c.work_key, 'agents', c.work_id)
    redis.call('HSET', R.conv_key(c.id), 'accepted', '1')
  end
end

-- Takes c away from its agent (or the agent it was offered to) and frees
-- the capacity it held. Returns the agent id it was with, or ''.
function R.release(c)
  local holder = ''
  if c.status == 'offered' then holder = c.offer_agent or ''
  elseif c.status == 'assigned' or c.status == 'waiting' then holder = c.agent_id or '' end
  if holder ~= '' then set_load(holder, c.channel, -1) end
  redis.call('ZREM', P .. 'offers', c.id)
  return holder
end

-- Appends an agent id to the conversation's declined list (offers that were
-- declined or lapsed are not made to the same agent again).
function R.add_declined(c, agent_id, now)
  local d = list(c.declined)
  redis.call('HSET', R.conv_key(c.id), 'declined_at', now)
  c.declined_at = now
  for _, x in ipairs(d) do if x == agent_id then return end end
  d[#d + 1] = agent_id
  c.declined = cjson.encode(d)
  redis.call('HSET', R.conv_key(c.id), 'declined', c.declined)
end

-- Returns a pull entry to the group so the next claim (XPENDING IDLE) sees
-- it at once, keeping its place in line.
function R.return_work(key, id, claim_timeout)
  redis.call('XCLAIM', key, 'agents', '_returned', 0, id, 'IDLE', claim_timeout + 1)
end

return R
