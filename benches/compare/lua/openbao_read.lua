-- OpenBao: read one KV v2 secret, with a token whose policy only allows reads.
package.path = os.getenv("COMPARE_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")
common.install()

local path = "/v1/secret/data/bench/" .. common.env("COMPARE_READ_KEY", "KEY_0500")
local headers = { ["X-Vault-Token"] = common.env("BAO_READ_TOKEN") }
local req = nil

function request()
  if req == nil then req = wrk.format("GET", path, headers) end
  return req
end
