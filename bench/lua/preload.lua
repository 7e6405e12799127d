-- Creates the preloaded keys key000000 .. key<keys-1> with POST /store, in
-- order, then idles: wrk cannot end a run early, so the driver script stops
-- wrk (SIGINT) once the server reports every key.
--   wrk -t1 ... -s preload.lua URL -- keys=100000 value_bytes=100
-- Run it with one wrk thread: the thread walks the keys in order.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")
common.callbacks()

local keys, value, next_key, idle = 0, "", 0, ""
local headers = { ["Content-Type"] = "application/json" }
local verified = false

function init(args)
   local options = common.options(args)
   keys = options.keys
   value = common.value(options.value_bytes)
   -- Built here, not when the file loads: wrk adds the Host header (which
   -- HTTP/1.1 requires) just before init().
   idle = wrk.format("GET", "/healthz")
end

function delay()
   -- Every key sent: wait (the driver stops wrk long before this runs out).
   if next_key >= keys then return 60000 end
   return 0
end

function request()
   -- wrk calls request() once after init() to check what it returns, and
   -- never sends that one: it must not use up a key.
   if not verified then
      verified = true
      return wrk.format("POST", "/store", headers, common.write_body(common.key(0), value))
   end
   if next_key >= keys then return idle end
   local key = common.key(next_key)
   next_key = next_key + 1
   return common.keep(next_key, wrk.format("POST", "/store", headers, common.write_body(key, value)))
end

-- A create answers 201, /healthz 200. A 409 (exists) can only come from a
-- wrk that does not make the check call above; the driver script checks the
-- server's key count in any case.
