/**
 * The Lua scripts the Redis journal runs. Keys are built inside the scripts from the prefix, as
 * Optuna's `JournalRedisStorage` does (`{prefix}:log_number`, `{prefix}:log:{n}`): one standalone
 * server, where a script runs atomically.
 */

/**
 * Appends records: ARGV = prefix, append id, record... Optuna's `INCR` + `SET` per record, all of
 * them in one script (nobody's record lands between ours). The append id makes a resend harmless:
 * ioredis sends a command again after a reconnect when its reply was lost, and a second run would
 * otherwise write the records twice (a second CREATE_TRIAL is a second trial). Resends come within
 * one reconnection: the id is kept for 10 minutes.
 */
export const APPEND = `
if redis.call('set', ARGV[1] .. ':fitloop:append:' .. ARGV[2], '1', 'NX', 'EX', 600) == false then return 0 end
redis.call('setnx', ARGV[1] .. ':log_number', -1)
for i = 3, #ARGV do
  local n = redis.call('incr', ARGV[1] .. ':log_number')
  redis.call('set', string.format('%s:log:%d', ARGV[1], n), ARGV[i])
end
return #ARGV - 2
`;

/**
 * Reads records ARGV[2]..ARGV[3] (inclusive) of prefix ARGV[1], never more than ARGV[4] bytes of
 * one: a record that is missing (a writer between INCR and SET, in cluster mode) or too large, or not a string
 * comes back as a marker starting with a NUL byte, which no JSON record does (a too large one with its
 * first 400 bytes, enough to tell a CREATE_TRIAL and its study).
 */
export const READ = `
local out = {}
for n = tonumber(ARGV[2]), tonumber(ARGV[3]) do
  local key = string.format('%s:log:%d', ARGV[1], n)
  local len = redis.pcall('strlen', key)
  if type(len) == 'table' then
    out[#out + 1] = '\\0wrongtype'
  elseif len == 0 then
    out[#out + 1] = '\\0missing'
  elseif len > tonumber(ARGV[4]) then
    out[#out + 1] = '\\0toolarge:' .. len .. ':' .. redis.call('getrange', key, 0, 399)
  else
    out[#out + 1] = redis.call('get', key)
  end
end
return out
`;

/**
 * KEYS[1] = key, ARGV[1] = token, ARGV[2] = ms: takes the lock, or finds it already ours. A plain
 * `SET NX` that Redis ran but whose reply was lost in a disconnection is sent again by ioredis and
 * then answers "taken": by ourselves, until the lock expires.
 */
export const ACQUIRE = `
local held = redis.call('get', KEYS[1])
if held == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end
if held then return 0 end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

/** KEYS[1] = key, ARGV[1] = token, ARGV[2] = ms: extends the key's life while it holds our token. */
export const RENEW = `
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
`;

/** KEYS[1] = key, ARGV[1] = token: deletes the key if it still holds our token. */
export const RELEASE = `
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
`;
