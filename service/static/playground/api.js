// Every call the page makes goes through here: this origin only, with the API key the user
// gave when the server asks for one (kept for this tab only, in sessionStorage).

const KEY = "relu-serve-api-key";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** GET `path`, or POST `json` (as JSON) or `form` (FormData); resolves to the parsed answer. */
export async function call(path, { json, form, query } = {}) {
  const headers = {};
  const key = sessionStorage.getItem(KEY);
  if (key) headers["x-api-key"] = key;
  let body;
  if (json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  const response = await fetch(url, { method: body === undefined ? "GET" : "POST", headers, body });
  const type = response.headers.get("content-type") || "";
  const answer = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    if (response.status === 401) askForKey();
    throw new ApiError(response.status, answer.detail ?? answer.error ?? String(answer));
  }
  return answer;
}

/** Show the key form; `onKey` runs after the user submits a key. */
let onKey = () => {};
export function whenKeyGiven(callback) {
  onKey = callback;
}

function askForKey() {
  const form = document.getElementById("key-form");
  if (!form.hidden) return;
  form.hidden = false;
  form.addEventListener(
    "submit",
    (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, document.getElementById("key-input").value);
      form.hidden = true;
      onKey();
    },
    { once: true },
  );
}

/** Show what went wrong (the server's message), or clear it with null. */
export function report(error) {
  const box = document.getElementById("error");
  if (error === null) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  if (error instanceof ApiError && error.status === 401) return; // the key form says it
  box.hidden = false;
  box.textContent = error instanceof ApiError ? `${error.status}: ${error.message}` : String(error);
}

/** `fn` called at most once per `ms` of quiet: the latest arguments win. */
export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
