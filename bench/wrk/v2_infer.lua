-- POST /v2/models/relu_cnn/infer: the binary tensor extension as tritonclient sends it (no
-- Content-Type; a JSON header of Inference-Header-Content-Length bytes, then the tensor's bytes).
-- BENCH_BODY names the body file (default v2_1.bin); <body>.len holds the JSON header's length.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local bench = require("common")
local dir = os.getenv("BENCH_BODY_DIR") or "."
local name = os.getenv("BENCH_BODY") or "v2_1.bin"
local file = assert(io.open(dir .. "/" .. name, "rb"), "cannot read body file " .. name)
wrk.method = "POST"
wrk.path = "/v2/models/relu_cnn/infer"
wrk.body = file:read("*a")
file:close()
local length = assert(io.open(dir .. "/" .. name .. ".len", "rb"))
wrk.headers["Inference-Header-Content-Length"] = length:read("*a")
length:close()
done = bench.done
