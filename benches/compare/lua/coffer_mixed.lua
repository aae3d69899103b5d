-- Coffer: a mixed load, 80 % reads and 20 % writes, for long runs (rss_hour.sh).
--
-- Run it with as many wrk threads as connections: each thread then has one connection,
-- so every response() answers the request() just before it, and a thread can keep the
-- id of the secret it created for the update and delete that follow.
--
-- Each thread repeats a cycle of 20 requests:
--   position 0        POST   create a new secret (a key of its own)
--   positions 5, 10   PUT    update that secret (a new value each time)
--   position 15       DELETE delete it
--   position 19       GET    list the environment: the whole list every other cycle,
--                            else its first page of 50 (limit=50)
--   the other 15      GET    one of the 1,000 loaded secrets by key, KEY_0001..KEY_1000
-- so at most one created secret per thread is live at any time and the number of
-- secrets stays bounded however long the run. No request is expected to fail: keys
-- are unique per run, thread and cycle, and only the thread's own secret is changed.
package.path = os.getenv("COMPARE_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
common.install()

local base = "/v1/secrets/?app_id=" .. common.env("COFFER_APP_ID") .. "&env=Development"
local keys = tonumber(common.env("COFFER_MIXED_KEYS", "1000"))
local nonce = common.env("COMPARE_NONCE", "0")
local read_headers = { ["Authorization"] = "Bearer Service " .. common.env("COFFER_READ_TOKEN") }
local write_headers = {
  ["Authorization"] = "Bearer Service " .. common.env("COFFER_WRITE_TOKEN"),
  ["Content-Type"] = "application/json",
}

local n = 0          -- requests made by this thread
local cycle = 0      -- cycles begun by this thread
local own_id = nil   -- the id of the secret this thread created and has not deleted
local pending = nil  -- what the request in flight was, for response()

local function read_key(i)
  pending = "read"
  local key = string.format("KEY_%04d", i % keys + 1)
  return wrk.format("GET", base .. "&key=" .. key, read_headers)
end

function request()
  local pos = n % 20
  n = n + 1
  if pos == 0 then
    cycle = cycle + 1
    pending = "create"
    local key = string.format("MIX_%s_T%d_%09d", nonce, tid, cycle)
    local body = '{"secrets":[{"key":"' .. key .. '","value":"' .. common.value(n) .. '"}]}'
    return wrk.format("POST", base, write_headers, body)
  elseif (pos == 5 or pos == 10) and own_id then
    pending = "update"
    local body = '{"secrets":[{"id":"' .. own_id .. '","value":"' .. common.value(n) .. '"}]}'
    return wrk.format("PUT", base, write_headers, body)
  elseif pos == 15 and own_id then
    pending = "delete"
    return wrk.format("DELETE", base, write_headers, '{"secrets":["' .. own_id .. '"]}')
  elseif pos == 19 then
    pending = "list"
    local path = base
    if cycle % 2 == 1 then path = path .. "&limit=50" end
    return wrk.format("GET", path, read_headers)
  end
  -- reads by key walk the loaded secrets with a stride, each thread from its own start
  return read_key(n * 7 + tid * 131)
end

local count_response = response

function response(status, headers, body)
  count_response(status, headers, body)
  if status >= 200 and status <= 299 then
    if pending == "create" then
      -- the answer is an array holding the created secret; its first "id" is the secret's
      own_id = string.match(body, '"id"%s*:%s*"([^"]+)"')
    elseif pending == "delete" then
      own_id = nil
    end
  elseif pending == "create" then
    -- no secret of this cycle to update or delete: those positions read instead
    own_id = nil
  end
end
