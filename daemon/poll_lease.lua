-- poll_lease.lua — who polls a social account, and when it may next ask
-- (daemon/poller.c). One script so that "am I still the holder?" and the
-- write it guards happen at once: a daemon that lost its lease (paused,
-- partitioned) can never move the cursor back or start a round early.
--
-- KEYS[1] lease   <prefix>lease:poll:<source>  = owner id, with a TTL
-- KEYS[2] cursor  <prefix>cursor:<source>
-- KEYS[3] state   <prefix>poll:<source>  hash: last_round, not_before (ms)
-- ARGV[1] op: 'go' | 'renew' | 'commit' | 'release'
-- ARGV[2] owner id, ARGV[3] lease TTL (ms)
--
-- go      ARGV[4] now (ms), ARGV[5] interval (ms), ARGV[6] '1' when this
--         request starts a round. Takes the lease when free. Returns
--         {'standby', ttl ms} when another daemon holds it, {'wait', ms}
--         when the interval or a rate limit says not yet, else
--         {'go', cursor or ''} (and records the round's start).
-- renew   Returns 1 while held, 0 when lost.
-- commit  ARGV[4] cursor ('' keeps it), ARGV[5] not_before (ms, '' keeps).
--         Returns 1, or 0 when the lease was lost (nothing written).
-- release Deletes the lease when held. Returns 1 or 0.

local op, owner, ttl = ARGV[1], ARGV[2], ARGV[3]
local holder = redis.call('GET', KEYS[1])
local mine = holder == owner

if op == 'go' then
  if holder and not mine then
    return {'standby', tostring(redis.call('PTTL', KEYS[1]))}
  end
  redis.call('SET', KEYS[1], owner, 'PX', ttl)
  local now = tonumber(ARGV[4])
  local st = redis.call('HMGET', KEYS[3], 'last_round', 'not_before')
  local wait_until = tonumber(st[2] or '0') or 0
  if ARGV[6] == '1' then
    local next_round = (tonumber(st[1] or '0') or 0) + tonumber(ARGV[5])
    if next_round > wait_until then wait_until = next_round end
  end
  if wait_until > now then
    return {'wait', tostring(wait_until - now)}
  end
  if ARGV[6] == '1' then redis.call('HSET', KEYS[3], 'last_round', ARGV[4]) end
  return {'go', redis.call('GET', KEYS[2]) or ''}
end

if not mine then return 0 end
if op == 'renew' then
  redis.call('PEXPIRE', KEYS[1], ttl)
elseif op == 'commit' then
  if ARGV[4] ~= '' then redis.call('SET', KEYS[2], ARGV[4]) end
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[3], 'not_before', ARGV[5]) end
  redis.call('PEXPIRE', KEYS[1], ttl)
elseif op == 'release' then
  redis.call('DEL', KEYS[1])
end
return 1
