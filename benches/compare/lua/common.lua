-- Shared wrk hooks for the Coffer/OpenBao comparison.
--
-- Every scenario script sets package.path from COMPARE_LUA_DIR, requires this
-- module, calls common.install() and then defines its own request().
--
-- What this module provides:
--   setup()    numbers the wrk threads (global `tid` in each thread) and keeps
--              them so done() can collect per-thread counters;
--   response() counts responses whose status is not 2xx (and keeps the first
--              such status and body for diagnosis);
--   done()     prints one machine-readable line:
--              COMPARE_RESULT {"requests":...,"rps":...,"p50_ms":...,...}
local M = {}

local threads = {}
local next_tid = 0

function M.env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default ~= nil then return default end
    error("environment variable " .. name .. " is not set")
  end
  return v
end

-- A 64-byte value that changes with n (so updates really change the value).
function M.value(n)
  return string.format("v%063d", n)
end

local function json_string(s)
  s = tostring(s or "")
  s = s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

function M.install()
  function setup(thread)
    thread:set("tid", next_tid)
    next_tid = next_tid + 1
    table.insert(threads, thread)
  end

  non2xx = 0
  bad_status = 0
  bad_body = ""

  function response(status, headers, body)
    if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if bad_status == 0 then
        bad_status = status
        bad_body = string.sub(body or "", 1, 200)
      end
    end
  end

  function done(summary, latency, requests)
    local bad, first_status, first_body = 0, 0, ""
    for _, t in ipairs(threads) do
      bad = bad + (t:get("non2xx") or 0)
      local s = t:get("bad_status") or 0
      if first_status == 0 and s ~= 0 then
        first_status = s
        first_body = t:get("bad_body") or ""
      end
    end
    local secs = summary.duration / 1e6
    local e = summary.errors
    io.write(string.format(
      'COMPARE_RESULT {"requests":%d,"duration_s":%.3f,"rps":%.1f,' ..
      '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
      '"non2xx":%d,"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
      '"first_bad_status":%d,"first_bad_body":%s}\n',
      summary.requests, secs, summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000,
      bad, e.connect, e.read, e.write, e.timeout,
      first_status, json_string(first_body)))
  end
end

return M
