//! The Lua scripts: every decision that must be unique across nodes is one
//! script, which Redis runs atomically (docs/scale-out.md, "Members across
//! nodes"). Times come from Redis's own clock (`TIME`), so nodes whose
//! clocks disagree still agree on who has expired.
//!
//! Per room, `who` maps a member's name to `"ID SESSION NODE"` (member ids
//! are digits, session tokens and node ids have no spaces), `members` to the
//! member's record as the node wrote it (opaque here), and `alive` scores
//! each name with the time its entry expires.

use redis::Script;

/// Every script, hashed once (a `Script` computes its SHA-1 when built).
#[derive(Debug)]
pub(super) struct Scripts {
    pub claim: Script,
    pub release: Script,
    pub release_node: Script,
    pub refresh: Script,
    pub sweep: Script,
    pub put_snapshot: Script,
    pub node_refresh: Script,
    pub node_release: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Self {
            claim: claim(),
            release: release(),
            release_node: release_node(),
            refresh: refresh(),
            sweep: sweep(),
            put_snapshot: put_snapshot(),
            node_refresh: node_refresh(),
            node_release: node_release(),
        }
    }
}

/// Shared by the scripts that sweep: removes every member whose time has
/// passed, with a `left` entry (reason `disconnected`) in the log for each,
/// written under the node that held the member (which stopped refreshing
/// it: most likely dead), so every node hosting the room, the sweeper
/// included, reads and relays it; a node skips only its own entries.
/// KEYS: who, members, alive, log.
const SWEEP_FN: &str = r"
local function sweep(now)
  local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. now)
  for _, name in ipairs(gone) do
    local who = redis.call('HGET', KEYS[1], name)
    redis.call('HDEL', KEYS[1], name)
    redis.call('HDEL', KEYS[2], name)
    redis.call('ZREM', KEYS[3], name)
    if who then
      local id, owner = string.match(who, '^(%d+) %S+ (%S+)$')
      redis.call('XADD', KEYS[4], '*', 'k', 'l', 'n', owner, 'f', id, 'd', 'disconnected')
    end
  end
  return gone
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// Claims a name in a room. KEYS: who, members, alive, log. ARGV: name,
/// presented session ('' for none), session for a new member, record, ttl
/// ms, max members, node, member id. Returns `{status, record}`: `joined`
/// (with `joined` in the log), `resumed` (the entry moves to this node; the
/// stored record and id stand), `taken` (the name is live and no session
/// was presented), `bad_session`, `full`.
fn claim() -> Script {
    Script::new(&format!(
        "{SWEEP_FN}{}",
        r"
sweep(now)
local name, presented, fresh, record = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local deadline = now + tonumber(ARGV[5])
local node, id = ARGV[7], ARGV[8]
local who = redis.call('HGET', KEYS[1], name)
if who then
  local old_id, session = string.match(who, '^(%d+) (%S+) ')
  if presented ~= '' and presented == session then
    redis.call('HSET', KEYS[1], name, old_id .. ' ' .. session .. ' ' .. node)
    redis.call('ZADD', KEYS[3], deadline, name)
    return {'resumed', redis.call('HGET', KEYS[2], name) or ''}
  end
  if presented == '' then return {'taken', ''} end
  return {'bad_session', ''}
end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[6]) then return {'full', ''} end
redis.call('HSET', KEYS[1], name, id .. ' ' .. fresh .. ' ' .. node)
redis.call('HSET', KEYS[2], name, record)
redis.call('ZADD', KEYS[3], deadline, name)
redis.call('XADD', KEYS[4], '*', 'k', 'j', 'n', node, 'f', id, 'd', record)
return {'joined', record}
"
    ))
}

/// Releases a name if this node still holds it. KEYS: who, members,
/// alive, log. ARGV: name, node, reason. Returns 1 when it removed the
/// member (and logged `left` with the reason), 0 when the name had moved
/// to another node or was gone.
fn release() -> Script {
    Script::new(
        r"
local who = redis.call('HGET', KEYS[1], ARGV[1])
if not who then return 0 end
local id, owner = string.match(who, '^(%d+) %S+ (%S+)$')
if owner ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('XADD', KEYS[4], '*', 'k', 'l', 'n', ARGV[2], 'f', id, 'd', ARGV[3])
return 1
",
    )
}

/// Releases every member this node holds in a room (at its stop): those
/// whose connection was still closing, or whose join the node claimed but
/// never answered, would otherwise hold their names until they expire.
/// KEYS: who, members, alive, log. ARGV: node, reason. Returns how many it
/// removed (each with `left` in the log).
fn release_node() -> Script {
    Script::new(
        r"
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  local name, who = all[i], all[i + 1]
  local id, owner = string.match(who, '^(%d+) %S+ (%S+)$')
  if owner == ARGV[1] then
    redis.call('HDEL', KEYS[1], name)
    redis.call('HDEL', KEYS[2], name)
    redis.call('ZREM', KEYS[3], name)
    redis.call('XADD', KEYS[4], '*', 'k', 'l', 'n', owner, 'f', id, 'd', ARGV[2])
    n = n + 1
  end
end
return n
",
    )
}

/// Pushes back the expiry of this node's members. KEYS: who, alive. ARGV:
/// node, ttl ms, then names. Returns the names that are not this node's
/// (swept, or moved to another node).
fn refresh() -> Script {
    Script::new(
        r"
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
local lost = {}
for i = 3, #ARGV do
  local who = redis.call('HGET', KEYS[1], ARGV[i])
  if who and string.match(who, ' (%S+)$') == ARGV[1] then
    redis.call('ZADD', KEYS[2], 'XX', deadline, ARGV[i])
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
",
    )
}

/// Removes expired members. KEYS: who, members, alive, log. Returns the
/// names removed.
fn sweep() -> Script {
    Script::new(&format!("{SWEEP_FN}return sweep(now)\n"))
}

/// Stores a snapshot unless a newer one is stored. KEYS: snap. ARGV: doc,
/// at. Returns 1 when stored.
fn put_snapshot() -> Script {
    Script::new(
        r"
local function older(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local cur = redis.call('HGET', KEYS[1], 'at')
if cur and not older(cur, ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'at', ARGV[2])
return 1
",
    )
}

/// Extends the node's claim on its id, or claims it again when nobody
/// holds it (the claim expired while Redis was away, or Redis came back
/// empty). KEYS: node key. ARGV: token, ttl ms. Returns 1 if held, 0 when
/// another node holds the id.
fn node_refresh() -> Script {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
",
    )
}

/// Gives the node's id up if it still holds it. KEYS: node key. ARGV:
/// token.
fn node_release() -> Script {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
",
    )
}
