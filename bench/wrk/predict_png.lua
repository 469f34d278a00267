-- POST /predict: one PNG uploaded as multipart/form-data (boundary as in bench/serving.py).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local bench = require("common")
bench.post("/predict", "multipart/form-data; boundary=relu-serve-bench-boundary", "predict_1.multipart")
done = bench.done
