-- GET on random preloaded keys. The path prefix is an argument, so the same
-- load goes to kvserver (path=/store?key=) and to webdis (path=/GET/).
--   wrk ... -s get.lua URL -- path=/store?key= keys=100000
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")

local requests = {}
common.callbacks(requests)

function init(args)
   local options = common.options(args)
   math.randomseed(os.time() + thread_id * 7919)
   -- Building a request string costs wrk (which shares the CPUs with the
   -- server) more than sending it, so every request is built up front.
   for i = 0, options.keys - 1 do
      requests[i + 1] = wrk.format("GET", options.path .. common.key(i))
   end
end
