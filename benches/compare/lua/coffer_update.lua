-- Coffer: update the same secret over and over (new value each time).
package.path = os.getenv("COMPARE_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
common.install()

local path = "/v1/secrets/?app_id=" .. common.env("COFFER_APP_ID") .. "&env=Development"
local headers = {
  ["Authorization"] = "Bearer Service " .. common.env("COFFER_WRITE_TOKEN"),
  ["Content-Type"] = "application/json",
}
local id = common.env("COFFER_UPDATE_ID")
local n = 0

function request()
  n = n + 1
  local body = '{"secrets":[{"id":"' .. id .. '","value":"' .. common.value(n) .. '"}]}'
  return wrk.format("PUT", path, headers, body)
end
