-- chat_seen.lua — the newest log entry a visitor's socket was sent; only
-- ever moves forward (several daemons may report for one conversation).
-- KEYS[1] <prefix>chat:seen:<conv>; ARGV: 1 log id, 2 ttl (ms)
local old = redis.call('GET', KEYS[1])
local function parts(id)
  local m, s = string.match(id or '', '^(%d+)-(%d+)$')
  return tonumber(m), tonumber(s)
end
local nm, ns = parts(ARGV[1])
local om, os = parts(old)
if not nm then return 0 end
if not om or nm > om or (nm == om and ns > os) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
