-- POST /predict: 64 images in one .npy body.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local bench = require("common")
bench.post("/predict", "application/x-npy", "predict_64.npy")
done = bench.done
