-- select_test.lua — unit test of the pure agent selection in
-- daemon/routing.lua (R.select, R.unfit, R.room, R.capacity,
-- R.language_matches, R.waiting_score), in Lua 5.1, the dialect Redis
-- embeds. Without a `redis` global, routing.lua returns before its Redis
-- helpers.
--
--   lua5.1 tests/unit/select_test.lua daemon/routing.lua
--
-- Prints every failure and a summary; exits 1 on any failure.

local path = arg[1]
if not path then
  io.stderr:write('usage: lua5.1 select_test.lua <path to daemon/routing.lua>\n')
  os.exit(2)
end
local R = dofile(path)
assert(type(R) == 'table' and type(R.select) == 'function',
  path .. ' did not return the routing table R')

local NOW = 1795440000000 -- ms; 2026-11-23
local passed, failed = 0, 0

local function check(name, ok, detail)
  if ok then
    passed = passed + 1
  else
    failed = failed + 1
    print('FAIL ' .. name .. (detail and (': ' .. detail) or ''))
  end
end

local function show(v)
  if v == nil then return 'nil' end
  return string.format('%q', tostring(v))
end

-- An agent as R.agent builds it from Redis. Defaults: online until a
-- minute from now, 5 of every channel ("*"), nothing assigned, never
-- assigned, no languages (serves any), no skills.
local function agent(t)
  local a = {
    id = t.id,
    cap = t.cap or {['*'] = 5},
    load = t.load or {},
    presence = t.presence or 'online',
    presence_expires_at = t.expires or (NOW + 60000),
    last_assigned_at = t.last or 0,
    languages = t.languages or {},
    skills = t.skills or {},
    queues = {'general'},
  }
  local total = 0
  for _, n in pairs(a.load) do total = total + n end
  a.load_total = t.load_total or total
  return a
end

-- A conversation as R.conv_view builds it. Defaults: chat, language 'und'.
local function conv(t)
  t = t or {}
  local declined = {}
  for _, id in ipairs(t.declined or {}) do declined[id] = true end
  return {
    id = t.id or 'C1',
    channel = t.channel or 'chat',
    language = t.language or 'und',
    skills = t.skills or {},
    declined = declined,
    sticky_agent = t.sticky,
  }
end

local function opts(t)
  t = t or {}
  local o = {now = NOW, strategy = t.strategy or 'least_busy', sticky = t.sticky ~= false,
    match_language = t.match_language ~= false, rr_last = t.rr_last}
  return o
end

-- --- R.select: agents x conversation -> pick --------------------------------

local cases = {
  -- presence
  {'online agent is picked', {agent{id = 'a'}}, conv(), opts(), 'a'},
  {'no agents', {}, conv(), opts(), nil},
  {'offline agent is skipped', {agent{id = 'a', presence = 'offline'}}, conv(), opts(), nil},
  {'away agent is skipped', {agent{id = 'a', presence = 'away'}}, conv(), opts(), nil},
  {'presence expired (heartbeat stopped)', {agent{id = 'a', expires = NOW - 1}}, conv(), opts(),
    nil},
  {'presence expiring exactly now counts as expired', {agent{id = 'a', expires = NOW}}, conv(),
    opts(), nil},
  {'presence expiring in 1 ms is online', {agent{id = 'a', expires = NOW + 1}}, conv(), opts(),
    'a'},
  {'offline agent skipped, online one picked',
    {agent{id = 'a', presence = 'offline'}, agent{id = 'b', load = {chat = 4}}}, conv(), opts(),
    'b'},

  -- capacity per channel, and the "*" fallback
  {'room on the channel', {agent{id = 'a', cap = {chat = 2}, load = {chat = 1}}}, conv(), opts(),
    'a'},
  {'at capacity on the channel', {agent{id = 'a', cap = {chat = 2}, load = {chat = 2}}}, conv(),
    opts(), nil},
  {'over capacity (capacity lowered)', {agent{id = 'a', cap = {chat = 1}, load = {chat = 3}}},
    conv(), opts(), nil},
  {'capacity for another channel only',
    {agent{id = 'a', cap = {sms = 5}}}, conv{channel = 'chat'}, opts(), nil},
  {'"*" covers a channel not listed', {agent{id = 'a', cap = {sms = 5, ['*'] = 1}}},
    conv{channel = 'email'}, opts(), 'a'},
  {'"*" is per channel: full on chat, room on sms',
    {agent{id = 'a', cap = {['*'] = 2}, load = {chat = 2}}}, conv{channel = 'sms'}, opts(), 'a'},
  {'"*" is per channel: full on chat',
    {agent{id = 'a', cap = {['*'] = 2}, load = {chat = 2}}}, conv{channel = 'chat'}, opts(), nil},
  {'the channel\'s own capacity wins over "*"',
    {agent{id = 'a', cap = {sms = 1, ['*'] = 5}, load = {sms = 1}}}, conv{channel = 'sms'},
    opts(), nil},
  {'capacity 0 on a channel is none, whatever "*" says',
    {agent{id = 'a', cap = {email = 0, ['*'] = 5}}}, conv{channel = 'email'}, opts(), nil},
  {'full agent skipped for one with room',
    {agent{id = 'a', cap = {chat = 1}, load = {chat = 1}}, agent{id = 'b', cap = {chat = 9},
      load = {chat = 8}}}, conv(), opts(), 'b'},

  -- required skills, case-insensitive
  {'has the required skill', {agent{id = 'a', skills = {'billing', 'vip'}}},
    conv{skills = {'billing'}}, opts(), 'a'},
  {'skills compare case-insensitively (agent upper)', {agent{id = 'a', skills = {'BILLING'}}},
    conv{skills = {'billing'}}, opts(), 'a'},
  {'skills compare case-insensitively (conversation upper)', {agent{id = 'a', skills = {'vip'}}},
    conv{skills = {'VIP'}}, opts(), 'a'},
  {'needs every required skill', {agent{id = 'a', skills = {'billing'}}},
    conv{skills = {'billing', 'vip'}}, opts(), nil},
  {'no skills, skill required', {agent{id = 'a'}}, conv{skills = {'vip'}}, opts(), nil},
  {'skilled agent picked over a less busy one without the skill',
    {agent{id = 'a'}, agent{id = 'b', skills = {'Refunds'}, load = {chat = 4}}},
    conv{skills = {'refunds'}}, opts(), 'b'},

  -- language
  {'speaks the language', {agent{id = 'a', languages = {'en', 'vi'}}}, conv{language = 'vi'},
    opts(), 'a'},
  {'does not speak the language', {agent{id = 'a', languages = {'en'}}}, conv{language = 'vi'},
    opts(), nil},
  {'"zh" serves "zh-Hant"', {agent{id = 'a', languages = {'zh'}}}, conv{language = 'zh-Hant'},
    opts(), 'a'},
  {'"zh" does not serve "zhx"', {agent{id = 'a', languages = {'zh'}}}, conv{language = 'zhx'},
    opts(), nil},
  {'language tags compare case-insensitively', {agent{id = 'a', languages = {'ZH'}}},
    conv{language = 'zh-hant'}, opts(), 'a'},
  {'"und" needs no language', {agent{id = 'a', languages = {'th'}}}, conv{language = 'und'},
    opts(), 'a'},
  {'no language needs none', {agent{id = 'a', languages = {'th'}}}, conv{language = ''}, opts(),
    'a'},
  {'an agent listing no languages serves any', {agent{id = 'a'}}, conv{language = 'th'}, opts(),
    'a'},
  {'match_language off: any agent', {agent{id = 'a', languages = {'en'}}}, conv{language = 'th'},
    opts{match_language = false}, 'a'},
  {'the speaker is picked over a less busy agent',
    {agent{id = 'a', languages = {'en'}}, agent{id = 'b', languages = {'en', 'th'},
      load = {chat = 4}}}, conv{language = 'th'}, opts(), 'b'},

  -- declined
  {'declined agent is skipped', {agent{id = 'a'}, agent{id = 'b', load = {chat = 3}}},
    conv{declined = {'a'}}, opts(), 'b'},
  {'everyone declined', {agent{id = 'a'}, agent{id = 'b'}}, conv{declined = {'a', 'b'}}, opts(),
    nil},
  {'declined sticky agent is not preferred', {agent{id = 'a', load = {chat = 3}}, agent{id = 'b'}},
    conv{declined = {'b'}, sticky = 'b'}, opts(), 'a'},

  -- sticky
  {'sticky agent preferred over a less busy one',
    {agent{id = 'a'}, agent{id = 'b', load = {chat = 4}}}, conv{sticky = 'b'}, opts(), 'b'},
  {'sticky off: the less busy one', {agent{id = 'a'}, agent{id = 'b', load = {chat = 4}}},
    conv{sticky = 'b'}, opts{sticky = false}, 'a'},
  {'sticky agent at capacity: strategy decides',
    {agent{id = 'a', load = {chat = 2}}, agent{id = 'b', cap = {chat = 1}, load = {chat = 1}},
      agent{id = 'c', load = {chat = 1}}}, conv{sticky = 'b'}, opts(), 'c'},
  {'sticky agent offline: strategy decides',
    {agent{id = 'a', load = {chat = 1}}, agent{id = 'b', presence = 'offline'}},
    conv{sticky = 'b'}, opts(), 'a'},
  {'sticky agent lacking the skill: strategy decides',
    {agent{id = 'a', skills = {'vip'}, load = {chat = 4}}, agent{id = 'b'}},
    conv{sticky = 'b', skills = {'vip'}}, opts(), 'a'},
  {'sticky agent not speaking the language: strategy decides',
    {agent{id = 'a', load = {chat = 4}}, agent{id = 'b', languages = {'en'}}},
    conv{sticky = 'b', language = 'vi'}, opts(), 'a'},
  {'sticky agent not in the list (another queue)', {agent{id = 'a', load = {chat = 2}}},
    conv{sticky = 'z'}, opts(), 'a'},
  {'sticky wins under round_robin too',
    {agent{id = 'a'}, agent{id = 'b'}, agent{id = 'c'}}, conv{sticky = 'a'},
    opts{strategy = 'round_robin', rr_last = 'a'}, 'a'},

  -- least_busy: load / capacity on the channel, then total load, then
  -- longest idle, then id
  {'least_busy: lower ratio wins over lower count',
    {agent{id = 'a', cap = {chat = 4}, load = {chat = 2}},
      agent{id = 'b', cap = {chat = 10}, load = {chat = 3}}}, conv(), opts(), 'b'},
  {'least_busy: ratio uses the "*" capacity',
    {agent{id = 'a', cap = {chat = 2}, load = {chat = 1}},
      agent{id = 'b', cap = {['*'] = 8}, load = {chat = 2}}}, conv(), opts(), 'b'},
  {'least_busy: ratio only counts the conversation\'s channel',
    {agent{id = 'a', cap = {['*'] = 4}, load = {chat = 1, sms = 3}},
      agent{id = 'b', cap = {['*'] = 4}, load = {chat = 2}}}, conv(), opts(), 'a'},
  {'least_busy: equal ratio, lower total load wins',
    {agent{id = 'a', cap = {chat = 2, sms = 5}, load = {chat = 1, sms = 2}},
      agent{id = 'b', cap = {chat = 4}, load = {chat = 2}}}, conv(), opts(), 'b'},
  {'least_busy: equal ratio and total, longest idle wins',
    {agent{id = 'a', load = {chat = 1}, last = NOW - 1000},
      agent{id = 'b', load = {chat = 1}, last = NOW - 5000}}, conv(), opts(), 'b'},
  {'least_busy: never assigned counts as longest idle',
    {agent{id = 'a', load = {chat = 1}, last = NOW - 5000},
      agent{id = 'b', load = {chat = 1}}}, conv(), opts(), 'b'},
  {'least_busy: all equal, lowest id',
    {agent{id = 'c', last = 7}, agent{id = 'a', last = 7}, agent{id = 'b', last = 7}}, conv(),
    opts(), 'a'},
  {'least_busy: ids compare as strings',
    {agent{id = 'agent-10'}, agent{id = 'agent-9'}}, conv(), opts(), 'agent-10'},
  {'unknown strategy behaves as least_busy',
    {agent{id = 'a', load = {chat = 3}}, agent{id = 'b', load = {chat = 1}}}, conv(),
    opts{strategy = 'random'}, 'b'},

  -- round_robin: the next id after the last pick, sorted, wrapping around;
  -- load does not matter
  {'round_robin: first pick is the lowest id',
    {agent{id = 'c'}, agent{id = 'a', load = {chat = 4}}, agent{id = 'b'}}, conv(),
    opts{strategy = 'round_robin'}, 'a'},
  {'round_robin: after a comes b', {agent{id = 'c'}, agent{id = 'a'}, agent{id = 'b'}}, conv(),
    opts{strategy = 'round_robin', rr_last = 'a'}, 'b'},
  {'round_robin: after b comes c', {agent{id = 'c'}, agent{id = 'a'}, agent{id = 'b'}}, conv(),
    opts{strategy = 'round_robin', rr_last = 'b'}, 'c'},
  {'round_robin: after the last id, wrap around',
    {agent{id = 'c'}, agent{id = 'a'}, agent{id = 'b'}}, conv(),
    opts{strategy = 'round_robin', rr_last = 'c'}, 'a'},
  {'round_robin: the next one unfit is skipped',
    {agent{id = 'a'}, agent{id = 'b', presence = 'away'}, agent{id = 'c'}}, conv(),
    opts{strategy = 'round_robin', rr_last = 'a'}, 'c'},
  {'round_robin: wrap around past unfit agents',
    {agent{id = 'a'}, agent{id = 'b'}, agent{id = 'c', cap = {chat = 0}}}, conv(),
    opts{strategy = 'round_robin', rr_last = 'b'}, 'a'},
  {'round_robin: last pick left the queue',
    {agent{id = 'a'}, agent{id = 'c'}}, conv(), opts{strategy = 'round_robin', rr_last = 'b'},
    'c'},
  {'round_robin: a single fit agent gets it again', {agent{id = 'a'}, agent{id = 'b',
    presence = 'offline'}}, conv(), opts{strategy = 'round_robin', rr_last = 'a'}, 'a'},
  {'round_robin: nobody fit', {agent{id = 'a', presence = 'offline'}}, conv(),
    opts{strategy = 'round_robin', rr_last = 'a'}, nil},

  -- longest_idle: oldest last_assigned_at, then id; load does not matter
  {'longest_idle: oldest assignment wins',
    {agent{id = 'a', last = NOW - 10}, agent{id = 'b', last = NOW - 99, load = {chat = 4}},
      agent{id = 'c', last = NOW - 50}}, conv(), opts{strategy = 'longest_idle'}, 'b'},
  {'longest_idle: never assigned first',
    {agent{id = 'a', last = 1}, agent{id = 'b', last = 0}}, conv(),
    opts{strategy = 'longest_idle'}, 'b'},
  {'longest_idle: tie, lowest id',
    {agent{id = 'b', last = 5}, agent{id = 'a', last = 5}}, conv(),
    opts{strategy = 'longest_idle'}, 'a'},
  {'longest_idle: the idlest unfit one is skipped',
    {agent{id = 'a', last = 1, skills = {}}, agent{id = 'b', last = 2, skills = {'vip'}}},
    conv{skills = {'vip'}}, opts{strategy = 'longest_idle'}, 'b'},
}

for _, c in ipairs(cases) do
  local name, agents, cv, o, want = c[1], c[2], c[3], c[4], c[5]
  local ok, got = pcall(R.select, agents, cv, o)
  if not ok then
    check('select: ' .. name, false, 'error: ' .. tostring(got))
  else
    local id = got and got.id
    check('select: ' .. name, id == want, 'got ' .. show(id) .. ', want ' .. show(want))
    -- The pick is one of the agents given, never a copy.
    if got then
      local found = false
      for _, a in ipairs(agents) do if a == got then found = true end end
      check('select returns the agent table: ' .. name, found)
    end
  end
end

-- select does not reorder or change the caller's list.
do
  local agents = {agent{id = 'c'}, agent{id = 'a'}, agent{id = 'b'}}
  R.select(agents, conv(), opts{strategy = 'round_robin'})
  R.select(agents, conv(), opts())
  check('select leaves the agent list as it was',
    agents[1].id == 'c' and agents[2].id == 'a' and agents[3].id == 'b')
end

-- --- R.unfit: why not ---------------------------------------------------------

local unfit_cases = {
  {'fit', agent{id = 'a'}, conv(), nil},
  {'offline', agent{id = 'a', presence = 'offline'}, conv(), 'online'},
  {'expired', agent{id = 'a', expires = NOW}, conv(), 'online'},
  {'declined', agent{id = 'a'}, conv{declined = {'a'}}, 'declined'},
  {'full', agent{id = 'a', cap = {chat = 1}, load = {chat = 1}}, conv(), 'capacity'},
  {'skill', agent{id = 'a'}, conv{skills = {'vip'}}, 'vip'},
  {'language', agent{id = 'a', languages = {'en'}}, conv{language = 'th'}, 'th'},
}
for _, c in ipairs(unfit_cases) do
  local why = R.unfit(c[2], c[3], opts())
  if c[4] == nil then
    check('unfit: ' .. c[1], why == nil, 'got ' .. show(why))
  else
    check('unfit: ' .. c[1], type(why) == 'string' and string.find(why, c[4], 1, true) ~= nil,
      'got ' .. show(why) .. ', want a reason naming ' .. show(c[4]))
  end
end

-- --- R.capacity / R.room --------------------------------------------------------

local a = agent{id = 'a', cap = {sms = 3, email = 0, ['*'] = 2}, load = {sms = 1, chat = 2}}
local room_cases = {
  {'sms', 3, 2}, {'chat', 2, 0}, {'email', 0, 0}, {'social', 2, 2},
}
for _, c in ipairs(room_cases) do
  check('capacity ' .. c[1], R.capacity(a, c[1]) == c[2],
    'got ' .. show(R.capacity(a, c[1])) .. ', want ' .. c[2])
  check('room ' .. c[1], R.room(a, c[1]) == c[3],
    'got ' .. show(R.room(a, c[1])) .. ', want ' .. c[3])
end
local none = agent{id = 'n', cap = {sms = 1}}
check('capacity without "*" for an unlisted channel is 0', R.capacity(none, 'chat') == 0)
check('room without "*" for an unlisted channel is 0', R.room(none, 'chat') == 0)
check('room is negative when over capacity',
  R.room(agent{id = 'o', cap = {chat = 1}, load = {chat = 3}}, 'chat') == -2)

-- --- R.language_matches(agent's tag, conversation's tag) -------------------

local lang_cases = {
  {'zh', 'zh', true}, {'zh', 'zh-Hant', true}, {'zh', 'zh-Hant-TW', true},
  {'zh', 'zhx', false}, {'zh-Hant', 'zh', false}, {'zh-Hant', 'zh-Hans', false},
  {'ZH', 'zh-hant', true}, {'vi', 'VI-vn', true}, {'en', 'e', false}, {'pt-BR', 'pt-br', true},
}
for _, c in ipairs(lang_cases) do
  check('language_matches(' .. c[1] .. ', ' .. c[2] .. ')', R.language_matches(c[1], c[2]) == c[3],
    'got ' .. show(R.language_matches(c[1], c[2])))
end

-- --- R.waiting_score: ZRANGE order of the waiting set -----------------------

local YEAR = 365 * 86400000
-- {priority, enqueued_at}, in the order they must come out.
local line = {
  {'urgent', NOW - 5}, {'urgent', NOW}, -- any urgent, however new ...
  {'high', NOW - YEAR}, {'high', NOW - 1},
  {'normal', NOW - 10 * YEAR}, {'normal', NOW - 2}, {'normal', NOW - 1},
  {'low', 0}, {'low', NOW}, -- ... before anything less, however old
}
for i = 1, #line - 1 do
  local x, y = line[i], line[i + 1]
  local sx, sy = R.waiting_score(x[1], x[2]), R.waiting_score(y[1], y[2])
  check(string.format('waiting_score: %s@%d before %s@%d', x[1], x[2], y[1], y[2]), sx < sy,
    string.format('%.0f >= %.0f', sx, sy))
end
check('waiting_score: an hour older urgent first',
  R.waiting_score('urgent', NOW - 3600000) < R.waiting_score('urgent', NOW))
check('waiting_score: unknown priority counts as normal',
  R.waiting_score('whatever', NOW) == R.waiting_score('normal', NOW))
check('waiting_score: enqueued_at may be a string (from a hash)',
  R.waiting_score('high', tostring(NOW)) == R.waiting_score('high', NOW))
-- Exact to the millisecond in every band (scores are doubles in Redis).
for _, p in ipairs({'urgent', 'high', 'normal', 'low'}) do
  local d = R.waiting_score(p, NOW + 1) - R.waiting_score(p, NOW)
  check('waiting_score: 1 ms apart in band ' .. p, d == 1, 'difference ' .. tostring(d))
end
check('waiting_score: the bands do not overlap until 2109',
  R.waiting_score('normal', 4398046511103) < R.waiting_score('low', 0))

-- --- summary ------------------------------------------------------------------

print(string.format('select_test: %d passed, %d failed', passed, failed))
if failed > 0 then os.exit(1) end
