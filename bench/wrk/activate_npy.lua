-- POST /activate: relu, value and grad, .npy body, .npz answer (BENCH_BODY=activate_1e3.npy, ...).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local bench = require("common")
bench.post("/activate?function=relu&outputs=value,grad", "application/x-npy", "activate_1e3.npy")
done = bench.done
