-- 95% GET /store?key=, 5% PUT /store, on random preloaded keys.
--   wrk ... -s mix.lua URL -- keys=100000 value_bytes=100 put_percent=5
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")
common.callbacks()

local gets, puts, put_share = {}, {}, 0.05

function init(args)
   local options = common.options(args)
   math.randomseed(os.time() + thread_id * 7919)
   put_share = (options.put_percent or 5) / 100
   local value = common.value(options.value_bytes)
   local headers = { ["Content-Type"] = "application/json" }
   for i = 0, options.keys - 1 do
      local key = common.key(i)
      gets[i + 1] = wrk.format("GET", "/store?key=" .. key)
      puts[i + 1] = wrk.format("PUT", "/store", headers, common.write_body(key, value))
   end
end

function request()
   if math.random() < put_share then
      return puts[math.random(#puts)]
   end
   return gets[math.random(#gets)]
end
