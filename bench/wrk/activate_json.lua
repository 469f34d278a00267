-- POST /activate: relu, value and grad, JSON body (BENCH_BODY=activate_1e3.json, _1e5, _1e6).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local bench = require("common")
bench.post("/activate", "application/json", "activate_1e3.json")
done = bench.done
