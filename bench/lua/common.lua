-- Shared by the wrk scripts in this folder: their arguments, the key and
-- value every store is preloaded with, and a count of answers outside 2xx
-- (wrk itself only counts statuses above 399).
--
-- Each wrk thread runs its own copy of a script, and setup()/done() run in
-- yet another one, so nothing here is shared between threads at run time.

local common = {}

-- The arguments after `--` on wrk's command line, as name=value pairs.
-- keys: how many keys were preloaded (key000000 .. key<keys-1>).
-- value_bytes: the length of every value written.
function common.options(args)
   local options = { keys = 100000, value_bytes = 100 }
   for _, arg in ipairs(args or {}) do
      local name, value = arg:match("^([%w_]+)=(.*)$")
      if not name then
         error("expected name=value after --, got " .. arg)
      end
      options[name] = tonumber(value) or value
   end
   return options
end

-- The name of preloaded key number i (0-based).
function common.key(i)
   return string.format("key%06d", i)
end

-- The value every write stores: printable ASCII, so no JSON escaping.
function common.value(bytes)
   return string.rep("v", bytes)
end

-- A seed-API write body. Keys and values here never need JSON escapes.
function common.write_body(key, value)
   return '{"key":"' .. key .. '","value":"' .. value .. '"}'
end

-- Returns request string number n, keeping a reference to it for a while.
-- wrk keeps only a C pointer to what request() returned; if a write is cut
-- short, the rest goes out later, and a string Lua had collected meanwhile
-- would send garbage. Scripts that build requests on the fly pass them here.
local recent = {}
function common.keep(n, request)
   recent[n % 4096] = request
   return request
end

-- Numbers the threads in setup() and remembers them for done().
local threads = {}

function common.setup(thread)
   thread:set("thread_id", #threads)
   -- Differs between runs, so keys made from it never collide with a
   -- previous run against the same server.
   thread:set("run_tag", string.format("%x", os.time()))
   table.insert(threads, thread)
end

-- Counts one answer; called from response() in every thread.
non_2xx = 0
function common.count(status)
   if status < 200 or status > 299 then
      non_2xx = non_2xx + 1
   end
end

-- Prints one line the driver script parses, after wrk's own report.
function common.done(summary, latency)
   local non_2xx = 0
   for _, thread in ipairs(threads) do
      non_2xx = non_2xx + (thread:get("non_2xx") or 0)
   end
   local errors = summary.errors
   io.write(string.format(
      "RESULT requests=%d rps=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f non_2xx=%d socket_errors=%d\n",
      summary.requests,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000,
      latency:percentile(99) / 1000,
      latency.max / 1000,
      non_2xx,
      errors.connect + errors.read + errors.write + errors.timeout))
end

-- Installs the wrk callbacks every script here shares: setup() numbers the
-- threads, response() counts answers outside 2xx, done() prints the RESULT
-- line. Given the table of requests a script's init() fills, request()
-- sends one of them at random; without it the script defines request().
function common.callbacks(requests)
   setup = common.setup
   response = common.count
   done = common.done
   if requests then
      request = function() return requests[math.random(#requests)] end
   end
end

return common
