/**
 * The Lua scripts of the Redis engine. Each runs atomically in Redis, so a publish's offset,
 * its stream entry, its idempotency key and its pub/sub message happen as one step, and the
 * pub/sub order of a channel is its offset order.
 *
 * Key layout (P = the key prefix, C = the channel's name, escaped so that it has no braces):
 *   P{C}:meta       hash: epoch, offset (the newest offset of the epoch), and (unless the
 *                   engine is durable) replid, the primary's replication id when the
 *                   epoch began
 *   P{C}:log        stream: entry id `<offset>-0`, fields d (data, JSON text) and t (ms time)
 *   P{C}:key:K      string: `<offset>,<data digest>` of an idempotent publish with key K,
 *                   when it had no publisher (PX = window)
 *   P{C}:pkey:H     the same for key K of publisher P, H = sha1(`<length of P>:P:K`)
 *   P{C}:presence   hash: client key -> `<owner>,<expiry ms>,<member JSON>`, owner the
 *                   connection id (`NODE.N`) holding the key, or the node's id
 *   P{C}:subs       hash: node id -> `<that node's subscriber count>,<expiry ms>`
 *   P{C}            pub/sub channel: messages and presence events (not a key)
 *
 * Pub/sub payloads (the first character says what it is):
 *   m<epoch>,<offset>,<data>     a message (epochs are [0-9a-z], so the first two commas split)
 *   j<member JSON>\n<client>     a join; JSON text never holds a raw newline
 *   u<member JSON>\n<client>     an update (the member changed: its presence state)
 *   l<member JSON>\n<client>     a leave
 *   e<data>                      an ephemeral message (no offset, not stored)
 *   E<client>\n<data>            the same with its publisher's client id
 *
 * Scripts read the time from their caller (ARGV), never from Redis, so every node and the
 * stored `t` fields agree with the clock the engine was given. Each script touches one
 * channel's keys only (one cluster slot); on a cluster it publishes with SPUBLISH, whose
 * channel P{C} has the same hash tag (see {@link shardedScripts}).
 */
import { createHash } from 'node:crypto';

export interface Script {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

function script(name: string, source: string): Script {
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * Shared by publish and history: the channel's epoch and offset, creating the channel (with
 * the caller's fresh epoch candidate) when its meta hash does not exist. A stream left
 * without its meta hash belongs to a lost epoch and is dropped.
 */
const OPEN_CHANNEL = `
local function open_channel(meta, log, candidate, expire, rid)
  local epoch = redis.call('HGET', meta, 'epoch')
  if epoch then
    return epoch, tonumber(redis.call('HGET', meta, 'offset'))
  end
  redis.call('DEL', log)
  redis.call('HSET', meta, 'epoch', candidate, 'offset', 0)
  if rid ~= '' then redis.call('HSET', meta, 'replid', rid) end
  if expire > 0 then redis.call('PEXPIRE', meta, expire) end
  return candidate, 0
end

-- With check = '1' (the engine is not durable): a channel created under another replication
-- id was carried over by a restart (Redis makes a new id each time it starts, and its
-- snapshot may predate the newest messages) or a failover (a replica promoted, which may
-- lack them), while nodes had delivered them: its offsets would be given out again, to
-- other messages. Its epoch ends, so no position in it is taken as recovered. A channel
-- stored without an id (by a durable engine) takes the current one. A server that does not
-- tell its id (INFO refused or without master_replid, as some hosted or compatible servers
-- may be) is not checked: with no id to compare, every epoch would end at every call.
local function check_primary(meta, log, check)
  if check ~= '1' then return '' end
  local told, info = pcall(redis.call, 'INFO', 'replication')
  local rid = told and type(info) == 'string' and string.match(info, 'master_replid:(%w+)') or ''
  if rid == '' then return '' end
  local stored = redis.call('HGET', meta, 'replid')
  if stored then
    if stored ~= rid then redis.call('DEL', meta, log) end
  elseif redis.call('HEXISTS', meta, 'epoch') == 1 then
    redis.call('HSET', meta, 'replid', rid)
  end
  return rid
end

-- The t field of a stream entry (fields come as a flat list: d, <data>, t, <time>).
local function entry_time(entry)
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 't' then return tonumber(fields[i + 1]) end
  end
  return 0
end
`;

/**
 * KEYS: meta, log, subs[, idempotency key]
 * ARGV: epoch candidate, now, historySize, historyTtl, channel expiry (0: none),
 *       idempotency window, pub/sub name, data, data digest, check the primary ('1' unless durable)
 * Returns {epoch, offset, outcome, subscribers}: outcome 0 published, 1 a repeat of the
 * key, 2 the key with other data (nothing published; offset is the key's); subscribers is
 * the sum of the counts in subs whose node's heartbeat has not run out (0 unless published).
 */
export const PUBLISH = script(
  'publish',
  `${OPEN_CHANNEL}
local meta, log, subs, idem = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, size, ttl, expire = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local rid = check_primary(meta, log, ARGV[10])
if idem then
  local epoch = redis.call('HGET', meta, 'epoch')
  local seen = redis.call('GET', idem)
  -- A key outliving its channel (it cannot, but for safety) belongs to a lost epoch.
  if epoch and seen then
    local comma = string.find(seen, ',', 1, true)
    if not comma then return {epoch, tonumber(seen), 1, 0} end
    local outcome = 1
    if string.sub(seen, comma + 1) ~= ARGV[9] then outcome = 2 end
    return {epoch, tonumber(string.sub(seen, 1, comma - 1)), outcome, 0}
  end
end
local epoch = open_channel(meta, log, ARGV[1], expire, rid)
local offset = redis.call('HINCRBY', meta, 'offset', 1)
if size > 0 then
  redis.call('XADD', log, 'MAXLEN', '~', size, offset .. '-0', 'd', ARGV[8], 't', now)
  if ttl > 0 then
    -- Trim what is older than historyTtl from the front; the entry just added is fresh.
    local cutoff = now - ttl
    local head = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
    if head and entry_time(head) <= cutoff then
      local start, fresh = '-', nil
      while not fresh do
        local batch = redis.call('XRANGE', log, start, '+', 'COUNT', 64)
        if #batch == 0 then break end
        for _, entry in ipairs(batch) do
          if entry_time(entry) > cutoff then fresh = entry[1]; break end
        end
        start = '(' .. batch[#batch][1]
      end
      if fresh then redis.call('XTRIM', log, 'MINID', fresh) end
    end
  end
end
if expire > 0 then
  redis.call('PEXPIRE', meta, expire)
  if size > 0 then redis.call('PEXPIRE', log, expire) end
end
if idem then redis.call('SET', idem, offset .. ',' .. ARGV[9], 'PX', ARGV[6]) end
redis.call('PUBLISH', ARGV[7], 'm' .. epoch .. ',' .. offset .. ',' .. ARGV[8])
local counts = redis.call('HVALS', subs)
local sum = 0
for _, value in ipairs(counts) do
  local comma = string.find(value, ',', 1, true)
  if comma and tonumber(string.sub(value, comma + 1)) > now then sum = sum + tonumber(string.sub(value, 1, comma - 1)) end
end
return {epoch, offset, 0, sum}
`,
);

/**
 * KEYS: meta, log
 * ARGV: epoch candidate, now, historySize, historyTtl, channel expiry (0: none),
 *       mode ('since' | 'newest'), since epoch, since offset, limit (-1: none),
 *       before (newest mode: only offsets under it; 0: none), check the primary ('1' unless durable)
 * Returns {epoch, offset, recovered (0|1), offset1, data1, offset2, data2, ...}.
 *
 * What history holds: the newest historySize offsets (XADD's MAXLEN ~ may keep a few more
 * entries; they do not count), from the front of which entries older than historyTtl are
 * gone. `since` is recovered when its epoch is the current one, it is not ahead of the
 * stream, and every message after it is still held.
 */
export const HISTORY = script(
  'history',
  `${OPEN_CHANNEL}
local meta, log = KEYS[1], KEYS[2]
local now, size, ttl, expire = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local mode, limit = ARGV[6], tonumber(ARGV[9])
local rid = check_primary(meta, log, ARGV[11])
local epoch, offset = open_channel(meta, log, ARGV[1], expire, rid)
local out = {epoch, offset, 0}
local cutoff = -1
if ttl > 0 then cutoff = now - ttl end
local low = offset - size + 1
if mode == 'since' then
  local since = tonumber(ARGV[8])
  if ARGV[7] ~= epoch or since == nil or since < 0 or since > offset then return out end
  if since == offset then out[3] = 1; return out end
  if size == 0 or since + 1 < low then return out end
  -- Recovery is all or nothing: more than the caller takes is not recovered.
  if limit >= 0 and offset - since > limit then return out end
  local first = (since + 1) .. '-0'
  local entries = redis.call('XRANGE', log, first, '+')
  if #entries == 0 or entries[1][1] ~= first or entry_time(entries[1]) <= cutoff then return out end
  out[3] = 1
  for _, entry in ipairs(entries) do
    local field_offset = tonumber(string.sub(entry[1], 1, -3))
    if field_offset > offset then break end
    out[#out + 1] = field_offset
    for i = 1, #entry[2], 2 do
      if entry[2][i] == 'd' then out[#out + 1] = entry[2][i + 1] end
    end
  end
  return out
end
local top = offset
local before = tonumber(ARGV[10]) or 0
if before > 0 and before - 1 < top then top = before - 1 end
if size == 0 or top < 1 or limit == 0 then return out end
local from = math.max(low, 1)
if limit > 0 and top - limit + 1 > from then from = top - limit + 1 end
if from > top then return out end
local entries = redis.call('XRANGE', log, from .. '-0', top .. '-0')
local i = 1
while i <= #entries and entry_time(entries[i]) <= cutoff do i = i + 1 end
for j = i, #entries do
  local entry = entries[j]
  out[#out + 1] = tonumber(string.sub(entry[1], 1, -3))
  for k = 1, #entry[2], 2 do
    if entry[2][k] == 'd' then out[#out + 1] = entry[2][k + 1] end
  end
end
return out
`,
);

/**
 * Adds or updates presence members of this node on one channel, publishing a join for each
 * that was not there (a new member, or one that other nodes expired while this node could
 * not reach Redis) and an update for each whose member JSON changed. A refresh ('1') leaves
 * alone a key another owner holds now (its client reconnected elsewhere) and answers it.
 * KEYS: presence
 * ARGV: pub/sub name, presence key expiry, refresh ('1' or '0'), then pairs of (client, stored value)
 * Returns the clients a refresh left to their new owner.
 */
export const JOIN = script(
  'join',
  `
local presence = KEYS[1]
local refresh = ARGV[3] == '1'
local taken = {}
local function owner_and_json(value)
  local a = string.find(value, ',', 1, true)
  local b = string.find(value, ',', a + 1, true)
  return string.sub(value, 1, a - 1), string.sub(value, b + 1)
end
for i = 4, #ARGV, 2 do
  local client, value = ARGV[i], ARGV[i + 1]
  local owner, json = owner_and_json(value)
  local old = redis.call('HGET', presence, client)
  if not old then
    redis.call('HSET', presence, client, value)
    redis.call('PUBLISH', ARGV[1], 'j' .. json .. '\\n' .. client)
  else
    local old_owner, old_json = owner_and_json(old)
    if refresh and old_owner ~= owner then
      taken[#taken + 1] = client
    else
      redis.call('HSET', presence, client, value)
      if old_json ~= json then redis.call('PUBLISH', ARGV[1], 'u' .. json .. '\\n' .. client) end
    end
  end
end
local expire = tonumber(ARGV[2])
if redis.call('PTTL', presence) < expire then redis.call('PEXPIRE', presence, expire) end
return taken
`,
);

/**
 * Removes one presence member and publishes its leave, if it was there (and, with an
 * owner, only if that connection still holds it: one that came back elsewhere stays).
 * KEYS: presence
 * ARGV: pub/sub name, client, owner ('' for any)
 * Returns 1 when it was removed.
 */
export const LEAVE = script(
  'leave',
  `
local value = redis.call('HGET', KEYS[1], ARGV[2])
if not value then return 0 end
local a = string.find(value, ',', 1, true)
if ARGV[3] ~= '' and string.sub(value, 1, a - 1) ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
local b = string.find(value, ',', a + 1, true)
redis.call('PUBLISH', ARGV[1], 'l' .. string.sub(value, b + 1) .. '\\n' .. ARGV[2])
return 1
`,
);

/**
 * How many members have not expired, then the member JSON texts of the first `limit` of them.
 * KEYS: presence
 * ARGV: now, limit (-1: all)
 */
export const MEMBERS = script(
  'members',
  `
local all = redis.call('HGETALL', KEYS[1])
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {0}
for i = 1, #all, 2 do
  local value = all[i + 1]
  local a = string.find(value, ',', 1, true)
  local b = string.find(value, ',', a + 1, true)
  if tonumber(string.sub(value, a + 1, b - 1)) > now then
    out[1] = out[1] + 1
    if limit < 0 or #out <= limit then out[#out + 1] = string.sub(value, b + 1) end
  end
end
return out
`,
);

/** The sum of the live nodes' subscriber counts in a subs hash (publish has its own copy, inline). */
const SUM_SUBSCRIBERS = `
local function subscribers(subs, now)
  local sum = 0
  for _, value in ipairs(redis.call('HVALS', subs)) do
    local comma = string.find(value, ',', 1, true)
    if comma and tonumber(string.sub(value, comma + 1)) > now then sum = sum + tonumber(string.sub(value, 1, comma - 1)) end
  end
  return sum
end
`;

/**
 * An ephemeral message: published on the channel's pub/sub only (no offset, nothing kept).
 * KEYS: subs
 * ARGV: pub/sub name, now, the pub/sub payload (`e<data>` or `E<client>\n<data>`)
 * Returns the channel's subscribers on the live nodes.
 */
export const EPHEMERAL = script(
  'ephemeral',
  `${SUM_SUBSCRIBERS}
redis.call('PUBLISH', ARGV[1], ARGV[3])
return subscribers(KEYS[1], tonumber(ARGV[2]))
`,
);

/**
 * The channel's subscribers on the live nodes (a channel whose member list is off).
 * KEYS: subs
 * ARGV: now
 */
export const SUBSCRIBERS = script(
  'subscribers',
  `${SUM_SUBSCRIBERS}
return subscribers(KEYS[1], tonumber(ARGV[1]))
`,
);

/**
 * A subscribed channel's share of a node heartbeat: keeps its meta hash alive (a channel
 * with subscribers keeps its epoch), writes this node's subscriber count with a new expiry
 * and drops the counts of nodes whose expiry passed, removes presence members whose
 * expiry has passed (a node that crashed stopped refreshing them) and publishes their
 * leaves. Atomic, so two nodes sweeping at once publish each leave once.
 * KEYS: meta, presence, subs
 * ARGV: now, pub/sub name, channel expiry (0: none), node id, `<count>,<expiry>` (or ''
 *       when this node has no subscribers there), subs key expiry
 * Returns {members expired, the channel's epoch (false: none), its offset}: where the
 * channel stands, so that the node notices a message its pub/sub never brought.
 */
export const SWEEP = script(
  'sweep',
  `
local meta, presence, subs = KEYS[1], KEYS[2], KEYS[3]
local now, expire = tonumber(ARGV[1]), tonumber(ARGV[3])
if expire > 0 then redis.call('PEXPIRE', meta, expire) end
local counts = redis.call('HGETALL', subs)
for i = 1, #counts, 2 do
  local comma = string.find(counts[i + 1], ',', 1, true)
  if counts[i] ~= ARGV[4] and (not comma or tonumber(string.sub(counts[i + 1], comma + 1)) <= now) then redis.call('HDEL', subs, counts[i]) end
end
if ARGV[5] ~= '' then
  redis.call('HSET', subs, ARGV[4], ARGV[5])
  redis.call('PEXPIRE', subs, ARGV[6])
else
  redis.call('HDEL', subs, ARGV[4])
end
local all = redis.call('HGETALL', presence)
local gone = 0
for i = 1, #all, 2 do
  local client, value = all[i], all[i + 1]
  local a = string.find(value, ',', 1, true)
  local b = string.find(value, ',', a + 1, true)
  if tonumber(string.sub(value, a + 1, b - 1)) <= now then
    redis.call('HDEL', presence, client)
    redis.call('PUBLISH', ARGV[2], 'l' .. string.sub(value, b + 1) .. '\\n' .. client)
    gone = gone + 1
  end
end
return {gone, redis.call('HGET', meta, 'epoch'), tonumber(redis.call('HGET', meta, 'offset') or 0)}
`,
);

/**
 * Writes (or, with an empty value, removes) this node's subscriber count of a channel.
 * KEYS: subs
 * ARGV: node id, `<count>,<expiry ms>` or '', subs key expiry (ms)
 */
export const COUNT = script(
  'count',
  `
if ARGV[2] == '' then return redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`,
);

export const SCRIPTS = [PUBLISH, HISTORY, JOIN, LEAVE, MEMBERS, SWEEP, COUNT, EPHEMERAL, SUBSCRIBERS] as const;

/** The scripts as a cluster runs them: SPUBLISH, so a message goes only to its channel's shard. */
export interface ScriptSet {
  readonly publish: Script;
  readonly history: Script;
  readonly join: Script;
  readonly leave: Script;
  readonly members: Script;
  readonly sweep: Script;
  readonly count: Script;
  readonly ephemeral: Script;
  readonly subscribers: Script;
}

const PLAIN: ScriptSet = { publish: PUBLISH, history: HISTORY, join: JOIN, leave: LEAVE, members: MEMBERS, sweep: SWEEP, count: COUNT, ephemeral: EPHEMERAL, subscribers: SUBSCRIBERS };

function shard(plain: Script): Script {
  return script(plain.name, plain.source.replaceAll("redis.call('PUBLISH',", "redis.call('SPUBLISH',"));
}

const SHARDED: ScriptSet = Object.fromEntries(Object.entries(PLAIN).map(([name, plain]) => [name, shard(plain)])) as unknown as ScriptSet;

/** The scripts for sharded pub/sub (a cluster) or classic pub/sub. */
export function scriptsFor(sharded: boolean): ScriptSet {
  return sharded ? SHARDED : PLAIN;
}
