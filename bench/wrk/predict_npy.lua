-- POST /predict: one image as a .npy body.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local bench = require("common")
bench.post("/predict", "application/x-npy", "predict_1.npy")
done = bench.done
