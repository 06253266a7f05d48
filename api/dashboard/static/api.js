// The dashboard's only way to data: the /v1 API, with the key the user pasted.
//
// The key lives in sessionStorage (this tab only, gone when it closes) and
// travels only in the Authorization header: never in a URL, a cookie or a log
// line, so neither server logs, history nor Referer can carry it.

const STORAGE_KEY = "agrimatch.apiKey";
const KEY_SHAPE = /^agm_[0-9a-f]{12}_[A-Za-z0-9_-]+$/;

// Relative to the page (/dashboard/ → /v1/), so a proxy prefix is kept.
export const API_BASE = new URL("../v1/", document.baseURI);

/** An RFC 9457 problem the API answered with (status 0: the API was not reached). */
export class Problem extends Error {
  constructor(status, title, detail, type = "about:blank") {
    super(detail || title);
    this.name = "Problem";
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.type = type;
  }
}

export const apiKey = {
  get: () => sessionStorage.getItem(STORAGE_KEY),
  set: (token) => sessionStorage.setItem(STORAGE_KEY, token),
  forget: () => sessionStorage.removeItem(STORAGE_KEY),
  looksValid: (token) => KEY_SHAPE.test(token),
  /** The public part of a key (agm_<id>): safe to show, it proves nothing. */
  label: (token) => token.split("_").slice(0, 2).join("_"),
};

// A 503 says "retry after Retry-After seconds": a GET is tried once more, after
// at most RETRY_CAP_S (a person is waiting; a longer outage is shown instead).
const RETRY_CAP_S = 3;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function call(method, path, options = {}) {
  try {
    return await attempt(method, path, options);
  } catch (error) {
    if (!(error instanceof Problem) || error.status !== 503 || method !== "GET") throw error;
    await sleep(Math.min(error.retryAfterS ?? 1, RETRY_CAP_S) * 1000);
    return attempt(method, path, options);
  }
}

async function attempt(method, path, { params, body } = {}) {
  const token = apiKey.get();
  if (!token) throw new Problem(401, "Unauthorized", "no API key entered");
  const url = new URL(path.replace(/^\//, ""), API_BASE);
  for (const [name, value] of Object.entries(params ?? {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new Problem(0, "Network error", "the API could not be reached; is the server up?");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const problem = new Problem(
      response.status,
      data?.title ?? response.statusText,
      data?.detail ?? `the API answered ${response.status}`,
      data?.type,
    );
    const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
    if (Number.isFinite(retryAfter)) problem.retryAfterS = retryAfter;
    throw problem;
  }
  return data;
}

export const get = (path, params) => call("GET", path, { params });
export const post = (path, body) => call("POST", path, { body });

/** Every item of a cursor-paginated list. */
export async function allPages(path, params = {}) {
  const items = [];
  let cursor = null;
  do {
    const page = await get(path, { ...params, limit: 500, cursor });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

/** A URL path segment (farm and field ids are the registry's, but never trust a name). */
export const seg = (value) => encodeURIComponent(value);

/** `fn` over `items`, at most `limit` at a time (the API serves many fields). */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
