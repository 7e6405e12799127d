-- POST /store (create) of new keys, unique per request: new-<run>-<thread>-<n>,
-- so every answer should be 201 and none 409.
--   wrk ... -s post.lua URL -- value_bytes=100
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")
common.callbacks()

local prefix, value, sent = "", "", 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
   local options = common.options(args)
   prefix = "new-" .. run_tag .. "-" .. thread_id .. "-"
   value = common.value(options.value_bytes)
end

function request()
   sent = sent + 1
   return common.keep(sent, wrk.format("POST", "/store", headers, common.write_body(prefix .. sent, value)))
end
