-- reply_status.lua — a provider's delivery report for a reply it accepted.
-- KEYS[1] provider message key, KEYS[2] events
-- ARGV: 1 prefix, 2 status, 3 error, 4 now (ms), 5 events maxlen
-- Returns 'ok' | 'unknown' (no such provider message)
local v = redis.call('GET', KEYS[1])
if not v then return 'unknown' end
local conv, reply = string.match(v, '^(%S+) (%S+)$')
local key = ARGV[1] .. 'conv:{' .. conv .. '}:reply:' .. reply
-- Reports can arrive out of order (sent after delivered): never step back.
-- Twilio: queued sending sent delivered undelivered failed; Vonage receipts:
-- accepted buffered delivered expired failed rejected (their "unknown"
-- arrives here as "sent").
local rank = {queued = 1, sending = 2, sent = 3, accepted = 3, buffered = 3,
  delivered = 4, undelivered = 4, failed = 4, expired = 4, rejected = 4}
local cur = redis.call('HGET', key, 'status')
if (rank[cur] or 0) <= (rank[ARGV[2]] or 3) then
  redis.call('HSET', key, 'status', ARGV[2], 'updated_at', ARGV[4])
  if ARGV[3] ~= '' then redis.call('HSET', key, 'error', ARGV[3]) end
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'type', 'reply.status',
  'conversation_id', conv, 'reply_id', reply, 'status', ARGV[2], 'at', ARGV[4])
return 'ok'
