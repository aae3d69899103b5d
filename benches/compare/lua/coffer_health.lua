-- Coffer: GET /health (no token, no store access): the HTTP framework ceiling.
package.path = os.getenv("COMPARE_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
common.install()

local req = nil

function request()
  if req == nil then req = wrk.format("GET", "/health") end
  return req
end
