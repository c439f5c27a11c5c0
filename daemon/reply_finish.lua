-- reply_finish.lua — record a delivery's outcome and acknowledge its outbox entry.
-- KEYS[1] reply hash, KEYS[2] conversation log, KEYS[3] events, KEYS[4] outbox,
-- KEYS[5] provider message key (prefix..'providermsg:<provider>:<id>')
-- ARGV: 1 reply id, 2 status (sent|failed), 3 provider message id, 4 error, 5 now (ms),
--       6 message JSON (sent), 7 conversation id, 8 events maxlen, 9 map ttl (s),
--       10 channel (chat: the sent message is published to the daemons'
--       websockets, with its place in the log), 11 chat offline email delay (ms, 0
--       none), 12 a copy through another channel (1|0: not a message of the log)
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'provider_message_id', ARGV[3],
  'error', ARGV[4], 'updated_at', ARGV[5])
if ARGV[2] == 'sent' and ARGV[12] == '1' then
  redis.call('SET', KEYS[5], ARGV[7] .. ' ' .. ARGV[1], 'EX', ARGV[9])
elseif ARGV[2] == 'sent' then
  local log_id = redis.call('XADD', KEYS[2], '*', 'message_id', ARGV[1], 'direction', 'out',
    'message', ARGV[6])
  if ARGV[10] == 'chat' then
    local prefix = string.match(KEYS[3], '^(.*)events$')
    redis.call('PUBLISH', prefix .. 'chat', '{"type":"message","conversation_id":"' .. ARGV[7] ..
      '","id":"' .. log_id .. '","direction":"out","message":' .. ARGV[6] .. '}')
    -- Unless a socket shows it to the visitor in time, it is emailed
    -- (chat_offline.lua).
    local delay = tonumber(ARGV[11] or '0') or 0
    if delay > 0 then
      redis.call('ZADD', prefix .. 'chat:offline', tonumber(ARGV[5]) + delay,
        ARGV[7] .. '|' .. log_id .. '|' .. ARGV[1])
    end
  end
  redis.call('SET', KEYS[5], ARGV[7] .. ' ' .. ARGV[1], 'EX', ARGV[9])
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'type', 'reply.' .. ARGV[2],
  'conversation_id', ARGV[7], 'reply_id', ARGV[1], 'status', ARGV[2], 'at', ARGV[5])
redis.call('XACK', KEYS[4], 'omnirouted', ARGV[1])
return 'ok'
