-- notify_fanout.lua — turn new events into deliveries to agents' tools
-- (daemon/notify.c). routing.lua is prepended (R).
--
-- Reading the events (as group `notify`), creating the deliveries and
-- acknowledging happen in one script: no event is read and then lost, and
-- with several daemons each event fans out once.
--
-- ARGV: 1 prefix, 2 now (ms), 3 consumer, 4 most events to read,
--       5 targets JSON: [{name, kind: webhook|email|supervisors, teams: [], agents: [],
--         events: [], emails: [] (supervisors)}]
-- Returns the number of deliveries created.

local now, consumer = ARGV[2], ARGV[3]
local targets = cjson.decode(ARGV[5])
local events_key = R.key('events')
local due_key = R.key('notify', 'due')

if redis.call('EXISTS', events_key) == 0 then return 0 end
local ok = pcall(redis.call, 'XGROUP', 'CREATE', events_key, 'notify', '$')
local _ = ok -- BUSYGROUP: already there

local batch = redis.call('XREADGROUP', 'GROUP', 'notify', consumer, 'COUNT', ARGV[4],
  'STREAMS', events_key, '>')
if not batch or not batch[1] then return 0 end

local function member(list, x)
  for _, v in ipairs(list or {}) do if v == x then return true end end
  return false
end

local made = 0
for _, e in ipairs(batch[1][2]) do
  local id, f = e[1], {}
  for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
  -- A transfer concerns the agent receiving it (none for a transfer to a
  -- queue: the assignment that follows is its own event).
  local agent_id = f.agent_id or ''
  if f.type == 'conversation.transferred' then agent_id = f.to_agent or '' end
  local a = agent_id ~= '' and R.hash(R.key('agent', agent_id)) or {}
  local teams = R.list(a.teams)
  local conv = f.conversation_id and R.hash(R.conv_key(f.conversation_id)) or {}
  local function deliver(t, did, kind, to)
    local payload = cjson.encode({
      delivery_id = did, event_id = id, event = f,
      agent = {id = agent_id, name = a.name or agent_id},
      conversation = {id = conv.id, channel = conv.channel, status = conv.status,
        queue = conv.queue, priority = conv.priority, language = conv.language,
        customer_name = conv.customer_name, customer_handle = conv.customer_handle}})
    redis.call('HSET', R.key('notify', did), 'delivery_id', did, 'target', t.name,
      'kind', kind, 'to', to, 'payload', payload, 'attempts', 0, 'status', 'pending',
      'created_at', now, 'updated_at', now)
    redis.call('ZADD', due_key, now, did)
    made = made + 1
  end
  for _, t in ipairs(targets) do
    if member(t.events, f.type) then
      if t.kind == 'supervisors' then
        -- Supervisors' addresses: every listed event, whoever holds it.
        -- Target names cannot contain '@': "@sup:" ids never collide.
        for _, addr in ipairs(t.emails or {}) do
          deliver(t, id .. ':@sup:' .. addr, 'email', addr)
        end
      else
        -- Agents' tools: the agent the event concerns; a target without
        -- agent or team filters also gets events that concern no agent.
        local unfiltered = #(t.agents or {}) == 0 and #(t.teams or {}) == 0
        local covers = unfiltered or (agent_id ~= '' and member(t.agents, agent_id))
        for _, team in ipairs(teams) do covers = covers or member(t.teams, team) end
        if t.kind == 'email' then
          -- To the agent's own address: only events that concern an agent.
          if agent_id ~= '' and covers and (a.email or '') ~= '' then
            deliver(t, id .. ':@email', 'email', a.email)
          end
        elseif covers and (agent_id ~= '' or unfiltered) then
          deliver(t, id .. ':' .. t.name, 'webhook', '')
        end
      end
    end
  end
  redis.call('XACK', events_key, 'notify', id)
end
return made
