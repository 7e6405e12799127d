-- PUT, GET and range on the same keys, through kvserver's /v1 API or
-- straight to etcd's JSON gateway (etcd 3.4 serves /v3/kv/* on its client
-- port), for bench/etcd.sh.
--   wrk ... -s cluster.lua URL -- api=v1|gateway op=put|txn|get|range keys=10000
-- Keys are key000000 .. (kvserver's; in etcd under etcd_prefix). A range
-- lists the 100 keys of a random prefix key00NN (with values). Gateway
-- writes go under gw/ so they never overwrite kvserver's values.
-- op=txn (gateway only) is a PUT as kvserver sends it to etcd for a plain
-- PUT /v1/kv/KEY (no TTL, no condition): one Txn comparing the key's lease
-- to 0, putting with prev_kv, else reading the key (backend/etcd.rs, put).
-- op=put-persist (v1 only) is PUT /v1/kv/KEY?persist=true, and op=put-ttl
-- PUT /v1/kv/ttl-KEY?ttl=60s: unconditional writes that set the deadline.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local common = require("common")

local requests = {}
common.callbacks(requests)

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Standard base64 with padding, as etcd's gateway reads bytes fields.
local function base64(text)
   local out = {}
   for i = 1, #text, 3 do
      local a, b, c = text:byte(i, i + 2)
      local n = a * 65536 + (b or 0) * 256 + (c or 0)
      local chars = {}
      for j = 3, 0, -1 do
         local index = math.floor(n / 64 ^ j) % 64 + 1
         chars[#chars + 1] = alphabet:sub(index, index)
      end
      if not b then chars[3] = "=" end
      if not c then chars[4] = "=" end
      out[#out + 1] = table.concat(chars)
   end
   return table.concat(out)
end

-- The smallest string after every string starting with prefix (ASCII).
local function prefix_end(prefix)
   return prefix:sub(1, -2) .. string.char(prefix:byte(-1) + 1)
end

function init(args)
   local options = common.options(args)
   math.randomseed(os.time() + thread_id * 7919)
   local value = common.value(options.value_bytes)
   local etcd_prefix = options.etcd_prefix or "kvstore/"
   local json = { ["Content-Type"] = "application/json" }
   local raw = { ["Content-Type"] = "application/octet-stream" }
   local op, api = options.op, options.api
   if op == "range" then
      for n = 0, math.floor(options.keys / 100) - 1 do
         local prefix = string.format("key%04d", n)
         if api == "v1" then
            requests[#requests + 1] = wrk.format("GET", "/v1/kv?prefix=" .. prefix .. "&limit=100&values=true")
         else
            local body = string.format('{"key":"%s","range_end":"%s","limit":100}',
               base64(etcd_prefix .. prefix), base64(prefix_end(etcd_prefix .. prefix)))
            requests[#requests + 1] = wrk.format("POST", "/v3/kv/range", json, body)
         end
      end
      return
   end
   for i = 0, options.keys - 1 do
      local key = common.key(i)
      if api == "v1" and op == "put" then
         requests[i + 1] = wrk.format("PUT", "/v1/kv/" .. key, raw, value)
      elseif api == "v1" and op == "put-persist" then
         requests[i + 1] = wrk.format("PUT", "/v1/kv/" .. key .. "?persist=true", raw, value)
      elseif api == "v1" and op == "put-ttl" then
         -- Keys of their own: a deadline on the shared ones would send
         -- every later plain put down its two-round-trip path (and expire
         -- them under get).
         requests[i + 1] = wrk.format("PUT", "/v1/kv/ttl-" .. key .. "?ttl=60s", raw, value)
      elseif api == "v1" and op == "get" then
         requests[i + 1] = wrk.format("GET", "/v1/kv/" .. key)
      elseif op == "put" then
         local body = string.format('{"key":"%s","value":"%s"}', base64("gw/" .. key), base64(value))
         requests[i + 1] = wrk.format("POST", "/v3/kv/put", json, body)
      elseif op == "txn" then
         local k = base64("gw/" .. key)
         local body = string.format(
            '{"compare":[{"target":"LEASE","result":"EQUAL","key":"%s","lease":"0"}],'
               .. '"success":[{"request_put":{"key":"%s","value":"%s","prev_kv":true}}],'
               .. '"failure":[{"request_range":{"key":"%s"}}]}',
            k, k, base64(value), k)
         requests[i + 1] = wrk.format("POST", "/v3/kv/txn", json, body)
      elseif op == "get" then
         local body = string.format('{"key":"%s"}', base64(etcd_prefix .. key))
         requests[i + 1] = wrk.format("POST", "/v3/kv/range", json, body)
      else
         error("unknown api/op " .. tostring(api) .. "/" .. tostring(op))
      end
   end
end
