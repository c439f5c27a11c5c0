-- parts.lua — collect the parts of a message a provider split.
-- KEYS[1] parts hash; ARGV: 1 part number, 2 total, 3 text, 4 ttl (s)
-- Returns the joined text when every part 1..total is in, else false.
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
local total = tonumber(ARGV[2])
if redis.call('HLEN', KEYS[1]) < total then return false end
local out = {}
for i = 1, total do
  local p = redis.call('HGET', KEYS[1], tostring(i))
  if not p then return false end
  out[i] = p
end
return table.concat(out)
