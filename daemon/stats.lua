-- stats.lua — the KPIs as one JSON document (GET /v1/stats,
-- `omniroutectl stats`). routing.lua is prepended (R). Reads only.
-- ARGV: 1 prefix, 2 now (ms)
local now = tonumber(ARGV[2])
local AGE_SPAN = 4398046511104 -- routing.lua's waiting-score band width

local queues = {}
for _, q in ipairs(redis.call('SMEMBERS', R.key('queues'))) do
  local wkey = R.key('queue', q, 'waiting')
  local first = redis.call('ZRANGE', wkey, 0, 0, 'WITHSCORES')
  local oldest = 0
  -- The oldest waiting is the smallest enqueued_at across bands, not the
  -- first in line (that is the highest priority).
  for _, band in ipairs({0, 1, 2, 3}) do
    local lo, hi = band * AGE_SPAN, (band + 1) * AGE_SPAN - 1
    local e = redis.call('ZRANGEBYSCORE', wkey, lo, hi, 'WITHSCORES', 'LIMIT', 0, 1)
    if e[2] then
      local age = now - (tonumber(e[2]) - lo)
      if age > oldest then oldest = age end
    end
  end
  local _ = first
  queues[q] = {waiting = redis.call('ZCARD', wkey), oldest_waiting_ms = oldest,
    mode = R.queue_conf(q).mode}
end

local agents = {}
local ids = redis.call('SMEMBERS', R.key('agents'))
table.sort(ids)
for _, id in ipairs(ids) do
  local a = R.agent(id)
  if a then
    agents[#agents + 1] = {id = id, presence = a.presence, load = a.load, capacity = a.cap,
      load_total = a.load_total}
  end
end

local function histograms(metric)
  local out, by = {}, {}
  local flat = redis.call('HGETALL', R.key('stats', metric))
  for i = 1, #flat, 2 do
    local ch, q, f = string.match(flat[i], '^(.-)|(.-)|(.+)$')
    if ch then
      local k = ch .. '|' .. q
      if not by[k] then
        by[k] = {channel = ch, queue = q, count = 0, sum_ms = 0, buckets = {}}
        out[#out + 1] = by[k]
      end
      local v = tonumber(flat[i + 1])
      if f == 'count' then by[k].count = v
      elseif f == 'sum_ms' then by[k].sum_ms = v
      else by[k].buckets[f] = v end
    end
  end
  for _, h in ipairs(out) do
    h.avg_ms = h.count > 0 and math.floor(h.sum_ms / h.count) or 0
  end
  return out
end

local sla, by = {}, {}
local flat = redis.call('HGETALL', R.key('stats', 'sla'))
for i = 1, #flat, 2 do
  local clock, ch, q, outcome = string.match(flat[i], '^(.-)|(.-)|(.-)|(.+)$')
  if clock then
    local k = clock .. '|' .. ch .. '|' .. q
    if not by[k] then
      by[k] = {clock = clock, channel = ch, queue = q, hit = 0, missed = 0}
      sla[#sla + 1] = by[k]
    end
    by[k][outcome] = tonumber(flat[i + 1])
  end
end
for _, s in ipairs(sla) do
  local total = s.hit + s.missed
  s.attainment = total > 0 and s.hit / total or cjson.null
end

local csat, cby = {}, {}
flat = redis.call('HGETALL', R.key('stats', 'csat'))
for i = 1, #flat, 2 do
  local ch, q, score = string.match(flat[i], '^(.-)|(.-)|(%d)$')
  if ch then
    local k = ch .. '|' .. q
    if not cby[k] then
      cby[k] = {channel = ch, queue = q, answers = 0, sum = 0,
        scores = {['1'] = 0, ['2'] = 0, ['3'] = 0, ['4'] = 0, ['5'] = 0}}
      csat[#csat + 1] = cby[k]
    end
    local n = tonumber(flat[i + 1])
    cby[k].scores[score] = n
    cby[k].answers = cby[k].answers + n
    cby[k].sum = cby[k].sum + n * tonumber(score)
  end
end
for _, x in ipairs(csat) do
  x.average = x.answers > 0 and x.sum / x.answers or cjson.null
  x.sum = nil
end

-- Redis's cjson writes an empty table as {}: mark empty lists and put []
-- back after encoding.
local EMPTY = '@@emptylist@@' -- no pattern magic characters
local function list(t) if #t == 0 then return EMPTY end return t end
local function map(t) if next(t) == nil then return cjson.decode('{}') end return t end
local doc = cjson.encode({generated_at = now, queues = map(queues), agents = list(agents),
  response_times = {first_response = list(histograms('first_response')),
    next_response = list(histograms('next_response')),
    resolution = list(histograms('resolution'))},
  sla = list(sla), csat = list(csat), sla_deadlines_pending = redis.call('ZCARD', R.key('sla', 'due'))})
return (string.gsub(doc, '"' .. EMPTY .. '"', '[]'))
