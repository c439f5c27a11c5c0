-- agent.lua — the agent registry and presence (daemon/agents_api.c,
-- daemon/assign.c). routing.lua is prepended (R).
--
-- ARGV: 1 prefix, 2 op, 3 agent id, 4 now (ms), 5 events maxlen, then per op:
--   put      6 source (config|runtime), 7 name, 8 email, 9 languages JSON,
--            10 skills JSON, 11 queues JSON, 12 teams JSON, 13 capacity JSON object
--   remove   6 source of the request (config|runtime)
--   presence 6 status (online|away|offline), 7 heartbeat timeout (ms), 8 reason
--   prune    6 JSON array of the ids the config defines (agent id unused)
--   get      -> {'ok', agent hash (flat)};  list -> {'ok', {hash, ...}} sorted by id
-- Returns {'ok', ...} | {'error', code, detail}

local op, id, now, emax = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ak = R.key('agent', id)

-- Offers waiting on an agent who can no longer answer go back in line.
local function requeue_offers(agent_id, why)
  local queues = {}
  for _, cid in ipairs(redis.call('ZRANGE', R.key('offers'), 0, -1)) do
    local c = R.hash(R.conv_key(cid))
    if c.status == 'offered' and c.offer_agent == agent_id then
      R.release(c)
      R.add_declined(c, agent_id, now)
      R.conv_event(now, emax, 'conversation.offer_withdrawn', c, {'agent_id', agent_id,
        'by', 'omnirouted', 'reason', why})
      R.enqueue(c, c.queue, {now = now, maxlen = emax, qmax = '100000', kind = 'requeued',
        keep_age = true, by = 'omnirouted', reason = why})
      queues[#queues + 1] = c.queue
    end
  end
  return queues
end

local function set_presence(id, status, ttl, reason)
  local ak = R.key('agent', id)
  local before = redis.call('HGET', ak, 'presence') or 'offline'
  local expires = 0
  if status == 'offline' then
    redis.call('ZREM', R.key('presence'), id)
  else
    expires = tonumber(now) + ttl
    redis.call('ZADD', R.key('presence'), expires, id)
  end
  redis.call('HSET', ak, 'presence', status, 'presence_expires_at', expires,
    'presence_updated_at', now)
  if before ~= status then
    redis.call('HSET', ak, 'presence_since', now)
    R.event(now, emax, {'type', 'agent.presence', 'agent_id', id, 'from', before, 'to', status,
      'by', reason == 'heartbeat timeout' and 'omnirouted' or id, 'reason', reason})
    if status ~= 'online' then requeue_offers(id, 'agent ' .. status) end
  end
  return before, expires
end

local function remove(agent_id)
  local key = R.key('agent', agent_id)
  local prev = redis.call('HGET', key, 'presence')
  if prev and prev ~= 'offline' then set_presence(agent_id, 'offline', 0, 'removed') end
  for _, q in ipairs(R.list(redis.call('HGET', key, 'queues'))) do
    redis.call('SREM', R.key('queue', q, 'agents'), agent_id)
  end
  redis.call('SREM', R.key('agents'), agent_id)
  redis.call('ZREM', R.key('presence'), agent_id)
  redis.call('DEL', key)
  R.event(now, emax, {'type', 'agent.removed', 'agent_id', agent_id, 'by', 'omnirouted'})
end

if op == 'get' then
  if redis.call('EXISTS', ak) == 0 then return {'error', 'unknown_agent', 'no agent ' .. id} end
  return {'ok', redis.call('HGETALL', ak)}
end

if op == 'list' then
  local out = {}
  local ids = redis.call('SMEMBERS', R.key('agents'))
  table.sort(ids)
  for _, x in ipairs(ids) do out[#out + 1] = redis.call('HGETALL', R.key('agent', x)) end
  return {'ok', out}
end

if op == 'put' then
  local source = ARGV[6]
  local existing = redis.call('HGET', ak, 'source')
  if existing == 'config' and source ~= 'config' then
    return {'error', 'config_agent', id .. ' is defined in the config file; change it there'}
  end
  local queues = R.list(ARGV[11])
  for _, q in ipairs(R.list(redis.call('HGET', ak, 'queues'))) do
    redis.call('SREM', R.key('queue', q, 'agents'), id)
  end
  for _, q in ipairs(queues) do redis.call('SADD', R.key('queue', q, 'agents'), id) end
  -- Capacity is replaced whole: a channel left out is no longer served.
  local flat = redis.call('HGETALL', ak)
  for i = 1, #flat, 2 do
    if string.match(flat[i], '^cap:') then redis.call('HDEL', ak, flat[i]) end
  end
  local cap = cjson.decode(ARGV[13])
  for ch, n in pairs(cap) do redis.call('HSET', ak, 'cap:' .. ch, n) end
  redis.call('HSET', ak, 'id', id, 'source', source, 'name', ARGV[7], 'email', ARGV[8],
    'languages', ARGV[9], 'skills', ARGV[10], 'queues', ARGV[11], 'teams', ARGV[12],
    'updated_at', now)
  local created = redis.call('HSETNX', ak, 'created_at', now)
  redis.call('HSETNX', ak, 'presence', 'offline')
  redis.call('HSETNX', ak, 'load', 0)
  redis.call('SADD', R.key('agents'), id)
  if existing then
    R.event(now, emax, {'type', 'agent.updated', 'agent_id', id, 'by', source})
  else
    R.event(now, emax, {'type', 'agent.added', 'agent_id', id, 'by', source})
  end
  return {'ok', created == 1 and 'created' or 'updated'}
end

if op == 'remove' then
  local existing = redis.call('HGET', ak, 'source')
  if not existing then return {'error', 'unknown_agent', 'no agent ' .. id} end
  if existing == 'config' and ARGV[6] ~= 'config' then
    return {'error', 'config_agent', id .. ' is defined in the config file; remove it there'}
  end
  remove(id)
  return {'ok', 'removed'}
end

if op == 'presence' then
  if redis.call('EXISTS', ak) == 0 then return {'error', 'unknown_agent', 'no agent ' .. id} end
  local before, expires = set_presence(id, ARGV[6], tonumber(ARGV[7]), ARGV[8])
  return {'ok', ARGV[6], tostring(expires), before}
end

if op == 'prune' then
  local keep = {}
  for _, x in ipairs(R.list(ARGV[6])) do keep[x] = true end
  local n = 0
  for _, x in ipairs(redis.call('SMEMBERS', R.key('agents'))) do
    if not keep[x] and redis.call('HGET', R.key('agent', x), 'source') == 'config' then
      remove(x)
      n = n + 1
    end
  end
  return {'ok', tostring(n)}
end

return {'error', 'bad_op', 'unknown op ' .. op}
