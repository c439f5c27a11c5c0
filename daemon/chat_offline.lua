-- chat_offline.lua — email the chat replies a visitor did not see in time
-- (connectors/chat/chat.c runs it every second on every daemon; taking a
-- member out of the set inside the script makes each one handled once).
-- KEYS[1] <prefix>chat:offline (zset "<conv>|<log id>|<reply id>" by due ms),
-- KEYS[2] outbox, KEYS[3] events
-- ARGV: 1 prefix, 2 now (ms), 3 provider to send through ("email:<mailbox>"),
--       4 most members per call, 5 events maxlen
-- Returns the number of replies queued for email.
local prefix = ARGV[1]

-- Stream ids "<ms>-<seq>": is a at or after b?
local function at_or_after(a, b)
  local am, as = string.match(a or '', '^(%d+)-(%d+)$')
  local bm, bs = string.match(b or '', '^(%d+)-(%d+)$')
  if not am or not bm then return false end
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as >= bs)
end

local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))
local queued = 0
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local conv, log_id, reply = string.match(member, '^([^|]+)|([^|]+)|(.+)$')
  if conv then
    local ck = prefix .. 'conv:{' .. conv .. '}'
    local seen = redis.call('GET', prefix .. 'chat:seen:' .. conv)
    local email = redis.call('HGET', ck, 'customer_handle')
    if not at_or_after(seen, log_id) and email and string.find(email, '@', 1, true) then
      local r = redis.call('HMGET', ck .. ':reply:' .. reply, 'text', 'agent_id')
      if r[1] then
        -- The daemon's own mail (agent omnirouted: Auto-Submitted, and no
        -- agent's answer for the clocks), a copy by another channel (via).
        redis.call('XADD', KEYS[2], '*', 'conversation_id', conv, 'agent_id', 'omnirouted',
          'text', 'You have a reply to your chat with us:\n\n' .. r[1], 'via', ARGV[3],
          'copy_of', reply)
        redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'type', 'chat.emailed',
          'conversation_id', conv, 'reply_id', reply, 'at', ARGV[2])
        queued = queued + 1
      end
    end
  end
end
return queued
