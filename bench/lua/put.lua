-- PUT /store (update) on random preloaded keys.
--   wrk ... -s put.lua URL -- keys=100000 value_bytes=100
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")

local requests = {}
common.callbacks(requests)

function init(args)
   local options = common.options(args)
   math.randomseed(os.time() + thread_id * 7919)
   local value = common.value(options.value_bytes)
   local headers = { ["Content-Type"] = "application/json" }
   for i = 0, options.keys - 1 do
      requests[i + 1] = wrk.format("PUT", "/store", headers, common.write_body(common.key(i), value))
   end
end
