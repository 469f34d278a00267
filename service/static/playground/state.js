// The activation plot's state in the URL's query (function, parameters, range, comparison),
// so that a link restores it: /playground?fn=leaky_relu&negative_slope=0.2&lo=-4&hi=4&vs=gelu

export function readState() {
  const state = { fn: null, lo: null, hi: null, vs: "", params: {} };
  for (const [key, value] of new URLSearchParams(location.search)) {
    if (key === "fn" || key === "vs") state[key] = value;
    else if (key === "lo" || key === "hi") state[key] = Number(value);
    else state.params[key] = value;
  }
  return state;
}

/** Put the state in the address bar (no reload) and return the shareable link. */
export function writeState({ fn, lo, hi, vs, params }) {
  const query = new URLSearchParams({ fn, lo: String(lo), hi: String(hi) });
  if (vs) query.set("vs", vs);
  for (const [key, value] of Object.entries(params)) query.set(key, value);
  history.replaceState(null, "", `${location.pathname}?${query}${location.hash}`);
  return `${location.origin}${location.pathname}?${query}`;
}
