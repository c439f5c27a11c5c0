-- notify_take.lua — lease due deliveries to this daemon (daemon/notify.c).
-- A taken delivery is pushed `lease` ms into the future: if this daemon
-- dies before recording the outcome, any daemon retries it then (at least
-- once; receivers dedupe on the delivery id, which never changes).
-- KEYS[1] due zset (<prefix>notify:due)
-- Emails wait behind each other on one SMTP worker: their lease covers the
-- whole queue the daemon allows itself (email slots × the SMTP timeouts).
-- ARGV: 1 prefix, 2 now (ms), 3 webhook lease (ms), 4 most to take,
--       5 email lease (ms), 6 how many emails it may take
-- Returns {{delivery id, target, kind, to, payload, attempts, created_at}, ...}
local out = {}
local emails = 0
for _, did in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0,
    tonumber(ARGV[4]) + tonumber(ARGV[6]))) do
  local key = ARGV[1] .. 'notify:' .. did
  local d = redis.call('HMGET', key, 'target', 'kind', 'to', 'payload', 'created_at')
  local lease = ARGV[3]
  if d[2] == 'email' then lease = ARGV[5] end
  if not d[1] then
    redis.call('ZREM', KEYS[1], did) -- expired or removed by hand
  elseif #out >= tonumber(ARGV[4]) or (d[2] == 'email' and emails >= tonumber(ARGV[6])) then
    -- no room this time: stays due
  else
    if d[2] == 'email' then emails = emails + 1 end
    redis.call('ZADD', KEYS[1], tonumber(ARGV[2]) + tonumber(lease), did)
    local n = redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HSET', key, 'status', 'sending', 'updated_at', ARGV[2])
    out[#out + 1] = {did, d[1], d[2], d[3] or '', d[4], n, d[5] or ARGV[2]}
  end
end
return out
