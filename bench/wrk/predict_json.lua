-- POST /predict: one image as JSON {"inputs": [[[...]]]} (relu-serve and both baselines).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local bench = require("common")
bench.post("/predict", "application/json", "predict_1.json")
done = bench.done
