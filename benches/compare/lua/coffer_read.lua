-- Coffer: read one secret by key, with a read-scoped service token
-- (COMPARE_READ_ENV, default Development; COMPARE_READ_KEY, default KEY_0500).
package.path = os.getenv("COMPARE_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
common.install()

local path = "/v1/secrets/?app_id=" .. common.env("COFFER_APP_ID") ..
  "&env=" .. common.env("COMPARE_READ_ENV", "Development") ..
  "&key=" .. common.env("COMPARE_READ_KEY", "KEY_0500")
local headers = { ["Authorization"] = "Bearer Service " .. common.env("COFFER_READ_TOKEN") }
local req = nil

function request()
  if req == nil then req = wrk.format("GET", path, headers) end
  return req
end
