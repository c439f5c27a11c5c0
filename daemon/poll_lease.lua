-- poll_lease.lua — who polls a social account, and when it may next ask
-- (daemon/poller.c). One script so that "am I still the holder?" and the
-- write it guards happen at once: a daemon that lost its lease (paused,
-- partitioned) can never move the cursor back or start a round early.
-- Every time is Redis' own clock (TIME), so daemons whose clocks disagree
-- still keep one interval between rounds.
--
-- KEYS[1] lease   <prefix>lease:poll:<source>  = owner id, with a TTL
-- KEYS[2] cursor  <prefix>cursor:<source>
-- KEYS[3] state   <prefix>poll:<source>  hash: last_round, not_before (ms,
--                 Redis clock)
-- ARGV[1] op: 'go' | 'renew' | 'commit' | 'release'
-- ARGV[2] owner id, ARGV[3] lease TTL (ms)
--
-- go      ARGV[4] interval (ms), ARGV[5] '1' when this request starts a
--         round, '2' when it retries the failed start of one (no wait for
--         the interval, but the round counts from now), '0' inside a round.
--         Takes the lease when free. Returns {'standby', ttl ms} when
--         another daemon holds it, {'wait', ms} when the interval or a rate
--         limit says not yet, else {'go', cursor or ''}.
-- renew   Returns 1 while held, 0 when lost.
-- commit  ARGV[4] cursor ('' keeps it), ARGV[5] ms from now before the
--         next request may go ('' keeps what is stored, '0' clears).
--         Returns 1, or 0 when the lease was lost (nothing written).
-- release Deletes the lease when held. Returns 1 or 0.

local op, owner, ttl = ARGV[1], ARGV[2], ARGV[3]
local holder = redis.call('GET', KEYS[1])
local mine = holder == owner
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if op == 'go' then
  if holder and not mine then
    return {'standby', tostring(redis.call('PTTL', KEYS[1]))}
  end
  redis.call('SET', KEYS[1], owner, 'PX', ttl)
  local st = redis.call('HMGET', KEYS[3], 'last_round', 'not_before')
  local wait_until = tonumber(st[2] or '0') or 0
  if ARGV[5] == '1' then
    local next_round = (tonumber(st[1] or '0') or 0) + tonumber(ARGV[4])
    if next_round > wait_until then wait_until = next_round end
  end
  if wait_until > now then
    return {'wait', string.format('%d', wait_until - now)}
  end
  if ARGV[5] ~= '0' then redis.call('HSET', KEYS[3], 'last_round', string.format('%d', now)) end
  return {'go', redis.call('GET', KEYS[2]) or ''}
end

if not mine then return 0 end
if op == 'renew' then
  redis.call('PEXPIRE', KEYS[1], ttl)
elseif op == 'commit' then
  if ARGV[4] ~= '' then redis.call('SET', KEYS[2], ARGV[4]) end
  if ARGV[5] ~= '' then
    local delay = tonumber(ARGV[5]) or 0
    redis.call('HSET', KEYS[3], 'not_before', string.format('%d', delay > 0 and now + delay or 0))
  end
  redis.call('PEXPIRE', KEYS[1], ttl)
elseif op == 'release' then
  redis.call('DEL', KEYS[1])
end
return 1
