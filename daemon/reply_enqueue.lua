-- reply_enqueue.lua — queue an agent's reply from the replies API.
-- KEYS[1] conversation hash, KEYS[2] outbox stream, KEYS[3] idempotency key
-- ARGV: 1 prefix, 2 conversation id, 3 agent id, 4 text, 5 has idempotency key (1|0),
--       6 idempotency ttl (s), 7 now (ms), 8 token name
-- Returns {'queued', reply_id} | {'duplicate', reply_id} | {'no_conversation'}
if redis.call('EXISTS', KEYS[1]) == 0 then return {'no_conversation'} end
if ARGV[5] == '1' then
  local id = redis.call('GET', KEYS[3])
  if id then return {'duplicate', id} end
end
local t = redis.call('TYPE', KEYS[2])['ok']
if t ~= 'none' and t ~= 'stream' then
  return redis.error_reply('WRONGTYPE ' .. KEYS[2] .. ' is a ' .. t)
end
-- The outbox entry id is the reply id: one identity from queue to provider.
local id = redis.call('XADD', KEYS[2], '*', 'conversation_id', ARGV[2], 'agent_id', ARGV[3],
  'text', ARGV[4], 'source', 'api:' .. ARGV[8])
redis.call('HSET', ARGV[1] .. 'conv:{' .. ARGV[2] .. '}:reply:' .. id,
  'reply_id', id, 'conversation_id', ARGV[2], 'agent_id', ARGV[3], 'text', ARGV[4],
  'status', 'queued', 'attempts', 0, 'created_at', ARGV[7], 'updated_at', ARGV[7])
if ARGV[5] == '1' then redis.call('SET', KEYS[3], id, 'EX', ARGV[6]) end
return {'queued', id}
