-- notify_done.lua — record a delivery attempt's outcome (daemon/notify.c).
-- KEYS[1] due zset, KEYS[2] delivery hash, KEYS[3] events
-- ARGV: 1 delivery id, 2 outcome (delivered|retry|failed), 3 next attempt (ms, retry),
--       4 error text, 5 now (ms), 6 HTTP/SMTP status, 7 events maxlen, 8 keep (s)
if redis.call('EXISTS', KEYS[2]) == 0 then return 'gone' end
redis.call('HSET', KEYS[2], 'status', ARGV[2] == 'retry' and 'retrying' or ARGV[2],
  'last_error', ARGV[4], 'last_status', ARGV[6], 'updated_at', ARGV[5])
if ARGV[2] == 'retry' then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  redis.call('HSET', KEYS[2], 'next_attempt_at', ARGV[3])
  return 'retry'
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[8])
if ARGV[2] == 'failed' then
  local t = redis.call('HMGET', KEYS[2], 'target', 'attempts')
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'type', 'notify.failed',
    'delivery_id', ARGV[1], 'target', t[1] or '', 'attempts', t[2] or '', 'error', ARGV[4],
    'at', ARGV[5])
end
return ARGV[2]
