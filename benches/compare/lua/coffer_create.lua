-- Coffer: create one new secret per request (unique key: run nonce, wrk thread, counter).
package.path = os.getenv("COMPARE_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
common.install()

local path = "/v1/secrets/?app_id=" .. common.env("COFFER_APP_ID") .. "&env=Development"
local headers = {
  ["Authorization"] = "Bearer Service " .. common.env("COFFER_WRITE_TOKEN"),
  ["Content-Type"] = "application/json",
}
local nonce = common.env("COMPARE_NONCE", "0")
local n = 0

function request()
  n = n + 1
  local key = string.format("NEW_%s_T%d_%08d", nonce, tid, n)
  local body = '{"secrets":[{"key":"' .. key .. '","value":"' .. common.value(n) .. '"}]}'
  return wrk.format("POST", path, headers, body)
end
