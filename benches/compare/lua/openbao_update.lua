-- OpenBao: write the same KV v2 path over and over (a new version each time).
package.path = os.getenv("COMPARE_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
common.install()

local path = "/v1/secret/data/bench/" .. common.env("COMPARE_UPDATE_KEY", "KEY_0001")
local headers = {
  ["X-Vault-Token"] = common.env("BAO_WRITE_TOKEN"),
  ["Content-Type"] = "application/json",
}
local n = 0

function request()
  n = n + 1
  return wrk.format("POST", path, headers, '{"data":{"value":"' .. common.value(n) .. '"}}')
end
