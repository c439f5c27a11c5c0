-- ingest.lua — store one inbound message atomically (daemon/ingest.c).
--
-- Redis runs a script without interleaving other commands, so dedup,
-- threading and the writes cannot race with another daemon. A script is
-- not a transaction, though: a failing command leaves earlier writes in
-- place. So every check that can fail (key types) runs before the first
-- write; after that only commands that cannot fail on valid input remain.
-- (Redis refuses a script's first write under OOM, before anything is
-- written.)
--
-- KEYS[1] dedup key    <prefix>dedup:<provider>:<external_id>
-- KEYS[2] thread key   <prefix>thread:<channel>:<hash of provider, customer, thread>
-- KEYS[3] events       <prefix>events
-- ARGV: 1 prefix, 2 candidate conversation id, 3 message id,
--       4 message JSON object without conversation_id, 5 channel,
--       6 provider, 7 customer id, 8 customer name, 9 customer handle,
--       10 queue, 11 priority, 12 rule, 13 now (ms), 14 dedup ttl (s),
--       15 queue maxlen, 16 events maxlen
-- Returns {status, conversation_id, message_id, queue, new(1|0)}.

local prefix = ARGV[1]

local seen = redis.call('GET', KEYS[1])
if seen then
  -- "<conversation> <message> <queue>": answer the retry with the ids the
  -- first delivery got, so the provider's view stays consistent.
  local c, m, q = string.match(seen, '^(%S+) (%S+) (%S+)$')
  return {'duplicate', c or '', m or '', q or '', 0}
end

local function require_type(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then
    return redis.error_reply('WRONGTYPE ' .. key .. ' is a ' .. t .. ', expected ' .. want)
  end
  return nil
end

local conv = redis.call('GET', KEYS[2])
local new = 0
if not conv then
  conv = ARGV[2]
  new = 1
end
local conv_key = prefix .. 'conv:{' .. conv .. '}'
local log_key = conv_key .. ':log'

local queue = ARGV[10]
if new == 0 then
  -- A follow-up stays with its conversation's queue: routing decides where
  -- a conversation goes when it opens.
  queue = redis.call('HGET', conv_key, 'queue') or queue
end
local queue_key = prefix .. 'queue:' .. queue

local err = require_type(conv_key, 'hash') or require_type(log_key, 'stream')
  or require_type(queue_key, 'stream') or require_type(KEYS[3], 'stream')
if err then return err end

-- Writes from here on.
local now = ARGV[13]
if new == 1 then
  redis.call('SET', KEYS[2], conv)
  redis.call('HSET', conv_key,
    'id', conv, 'channel', ARGV[5], 'provider', ARGV[6],
    'customer_id', ARGV[7], 'customer_name', ARGV[8], 'customer_handle', ARGV[9],
    'status', 'open', 'queue', queue, 'priority', ARGV[11], 'rule', ARGV[12],
    'created_at', now, 'updated_at', now, 'last_inbound_at', now, 'message_count', 1)
else
  redis.call('HSET', conv_key, 'updated_at', now, 'last_inbound_at', now)
  if ARGV[8] ~= '' then redis.call('HSET', conv_key, 'customer_name', ARGV[8]) end
  redis.call('HINCRBY', conv_key, 'message_count', 1)
end

-- The message JSON is built in C without the conversation id (unknown
-- until now); splice it in as the first member.
local message = '{"conversation_id":"' .. conv .. '",' .. string.sub(ARGV[4], 2)

redis.call('XADD', log_key, '*', 'message_id', ARGV[3], 'direction', 'in', 'message', message)

if redis.call('EXISTS', queue_key) == 0 then
  redis.call('XGROUP', 'CREATE', queue_key, 'agents', '0', 'MKSTREAM')
end
redis.call('XADD', queue_key, 'MAXLEN', '~', ARGV[15], '*',
  'conversation_id', conv, 'message_id', ARGV[3],
  'kind', new == 1 and 'new' or 'message',
  'channel', ARGV[5], 'provider', ARGV[6], 'priority', ARGV[11], 'message', message)

redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[16], '*',
  'type', new == 1 and 'conversation.opened' or 'message.received',
  'conversation_id', conv, 'message_id', ARGV[3], 'queue', queue,
  'channel', ARGV[5], 'at', now)

redis.call('SET', KEYS[1], conv .. ' ' .. ARGV[3] .. ' ' .. queue, 'EX', ARGV[14])

return {'stored', conv, ARGV[3], queue, new}
