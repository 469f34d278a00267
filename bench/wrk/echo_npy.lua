-- POST /echo of the bare-ASGI ceiling: the 1e6-element .npy body back twice (transport floor).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local bench = require("common")
bench.post("/echo", "application/x-npy", "activate_1e6.npy")
done = bench.done
