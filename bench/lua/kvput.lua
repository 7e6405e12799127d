-- PUT /v1/kv/<key> (update) on random keys key:000000000000 .. with a raw
-- value of value_bytes x's: the keys and values redis-benchmark's
-- `SET -r <keys> -d <value_bytes>` writes.
--   wrk ... -s kvput.lua URL -- keys=100000 value_bytes=100
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")

local requests = {}
common.callbacks(requests)

function init(args)
   local options = common.options(args)
   math.randomseed(os.time() + thread_id * 7919)
   local value = string.rep("x", options.value_bytes)
   local headers = { ["Content-Type"] = "application/octet-stream" }
   -- Built up front: building a request costs wrk more than sending it.
   for i = 0, options.keys - 1 do
      requests[i + 1] = wrk.format("PUT", string.format("/v1/kv/key:%012d", i), headers, value)
   end
end
