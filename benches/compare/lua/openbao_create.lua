-- OpenBao: write one new KV v2 secret per request (unique path per request).
package.path = os.getenv("COMPARE_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
common.install()

local headers = {
  ["X-Vault-Token"] = common.env("BAO_WRITE_TOKEN"),
  ["Content-Type"] = "application/json",
}
local nonce = common.env("COMPARE_NONCE", "0")
local n = 0

function request()
  n = n + 1
  local path = string.format("/v1/secret/data/bench/NEW_%s_T%d_%08d", nonce, tid, n)
  local body = '{"data":{"value":"' .. common.value(n) .. '"}}'
  return wrk.format("POST", path, headers, body)
end
