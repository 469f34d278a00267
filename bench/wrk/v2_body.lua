-- POST a v2 infer request (bench/v2_vs_peers.py): binary tensor or JSON body read from a file.
--
-- Environment (besides common.lua's): BENCH_PATH (e.g. /v2/models/relu_cnn/infer),
-- BENCH_HEADER_LENGTH (the JSON head's byte length: sent as Inference-Header-Content-Length,
-- and no Content-Type, as tritonclient sends binary requests; unset: a JSON body with
-- Content-Type application/json).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local bench = require("common")
local head = os.getenv("BENCH_HEADER_LENGTH")
bench.post(assert(os.getenv("BENCH_PATH"), "BENCH_PATH is not set"), "application/json", "v2.body")
if head then
  wrk.headers["Content-Type"] = nil
  wrk.headers["Inference-Header-Content-Length"] = head
end
done = bench.done
