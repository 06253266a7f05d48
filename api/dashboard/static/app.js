// The dashboard: asks for a key, then shows what that key may see through /v1.
//
// Every section loads on its own: a 403 (the key's role may not see it) or a
// 404 (nothing computed yet) hides that section and says so in "What this key
// may see"; a 401 forgets the key and asks again.

import { allPages, apiKey, get, Problem } from "./api.js";
import { drawSupply, offerPairs, showBalance } from "./balance.js";
import { charts, destroyChart } from "./charts.js";
import { $, el, show } from "./dom.js";
import { fieldKey, loadForecasts, offerSensors, renderFields, showTelemetry } from "./fields.js";
import { campaignRows, plantingBodies, proposalRows } from "./recommendations.js";
import { offerCrops, runWhatIf } from "./whatif.js";

const SECTIONS = {
  fields: "Fields, their latest readings and telemetry",
  forecasts: "Yield and harvest forecasts",
  balance: "Weekly supply against demand",
  campaigns: "Campaign recommendations",
  planting: "Planting recommendations",
  whatif: "What-ifs",
  supply: "Weekly supply (a platform's view)",
  proposals: "Campaigns proposed to this platform",
};

// Bumped at each key change: answers that arrive for an older key are dropped.
let epoch = 0;
const state = { fields: [], campaigns: [], asOf: null };

class KeyRefused extends Error {}

function message(text) {
  $("message").textContent = text ?? "";
  show($("message"), Boolean(text));
}

function prompt() {
  show($("key-form"));
  show($("key-state"), false);
  show($("intro"));
  show($("views"), false);
  $("key-input").focus();
}

function reset() {
  for (const name of [...charts.keys()]) destroyChart(name);
  for (const section of $("views").querySelectorAll("section.panel:not(#access)")) show(section, false);
  for (const table of $("views").querySelectorAll("table.data tbody")) table.replaceChildren();
  $("planting-table").querySelectorAll("tbody").forEach((body) => body.remove());
  $("access-list").replaceChildren();
  $("run").textContent = "";
  $("telemetry-range").textContent = "";
  $("whatif-status").textContent = "";
  show($("whatif-result"), false);
  Object.assign(state, { fields: [], campaigns: [], asOf: null });
  delete document.body.dataset.state;
}

function forget(text) {
  apiKey.forget();
  epoch += 1;
  reset();
  prompt();
  message(text);
}

function onKey(event) {
  event.preventDefault(); // the key goes to sessionStorage, never into a URL
  const input = $("key-input");
  const token = input.value.trim();
  input.value = "";
  if (!apiKey.looksValid(token)) {
    message("That is not an agrimatch API key: a key looks like agm_<12 hex digits>_<secret>.");
    return;
  }
  apiKey.set(token);
  start();
}

function start() {
  message("");
  show($("key-form"), false);
  show($("intro"), false);
  $("key-label").textContent = `key ${apiKey.label(apiKey.get())}`;
  show($("key-state"));
  show($("views"));
  epoch += 1;
  reset();
  const mine = epoch;
  load(mine).catch((error) => {
    if (mine !== epoch) return;
    if (error instanceof KeyRefused) forget(error.message);
    else message(`The dashboard failed: ${error.message}`);
  });
}

/** Note what became of a section for this key; returns whether it is shown. */
function access(name, outcome) {
  let text = SECTIONS[name];
  let kind = "ok";
  if (outcome instanceof Problem) {
    if (outcome.status === 401) throw new KeyRefused(`The API refused the key: ${outcome.detail}`);
    kind = outcome.status === 403 ? "forbidden" : outcome.status === 404 ? "empty" : "error";
    const why = { forbidden: "not for this key", empty: "nothing yet", error: "unavailable" }[kind];
    text += `: ${why} (${outcome.status ? `${outcome.status} ` : ""}${outcome.detail})`;
  } else if (outcome instanceof Error) {
    throw outcome; // a bug of the page, not an answer of the API
  } else if (typeof outcome === "string") {
    text += `: ${outcome}`;
  }
  const mark = { ok: "✓", forbidden: "✗", empty: "…", error: "!" }[kind];
  const item = el("li", { class: kind, dataset: { section: name, state: kind } }, `${mark} ${text}`);
  // What the key may see first, then what it may not and why.
  const firstRefused = kind === "ok" ? $("access-list").querySelector("li:not(.ok)") : null;
  $("access-list").insertBefore(item, firstRefused);
  return kind === "ok";
}

async function settle(promise) {
  try {
    return await promise;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

const ok = (value) => !(value instanceof Error);

function showRun(answer) {
  if (!answer?.as_of || state.asOf) return;
  state.asOf = answer.as_of;
  $("run").textContent = `forecast as of ${answer.as_of} · model ${answer.model_version} · run ${answer.run_id}`;
}

async function load(mine) {
  // One call first, the rest together: a key's first call of a while is the one
  // that notes it was used (a registry write), and a burst of such writes would
  // collide on a SQLite registry (503s).
  const fields = await settle(allPages("fields"));
  if (mine !== epoch) return;
  const [campaigns, planting] = await Promise.all([
    settle(get("recommendations/campaigns")),
    settle(get("recommendations/planting")),
  ]);
  if (mine !== epoch) return;

  if (access("campaigns", ok(campaigns) ? null : campaigns)) {
    showRun(campaigns);
    state.campaigns = campaigns.campaigns;
    $("campaigns-table").tBodies[0].replaceChildren(...campaignRows(state.campaigns));
    show($("campaigns-section"));
  }
  if (access("planting", ok(planting) ? null : planting)) {
    showRun(planting);
    $("planting-table").append(...plantingBodies(planting.planting));
    show($("planting-section"));
  }

  if (access("fields", ok(fields) ? null : fields)) {
    await loadAgronomist(mine, fields);
  } else {
    await loadPlatform(mine);
  }
  if (mine === epoch) document.body.dataset.state = "ready";
}

async function loadAgronomist(mine, fields) {
  state.fields = fields;
  renderFields(fields, pickField);
  show($("fields-section"));

  const pairs = offerPairs($("balance-pair"), fields);
  const crops = [...new Set(fields.map((field) => field.crop))].sort();
  const [forecasts, balance] = await Promise.all([
    settle(loadForecasts(fields)),
    pairs.length ? settle(showBalance(pairs[0], state.campaigns)) : null,
    fields.length ? pickField(fields[0]) : null,
  ]);
  if (mine !== epoch) return;
  if (!ok(forecasts) && !(forecasts instanceof Problem)) throw forecasts;
  access("forecasts", ok(forecasts) ? `${forecasts} of ${fields.length} fields have one` : forecasts);
  if (balance === null) access("balance", "no fields, no crops to show");
  else if (access("balance", ok(balance) ? null : balance)) {
    showRun(balance);
    show($("balance-section"));
  }
  if (crops.length) {
    offerCrops(crops);
    show($("whatif-section"));
    access("whatif", "run on demand below");
  }
}

async function loadPlatform(mine) {
  const [supply, proposals] = await Promise.all([settle(get("supply")), settle(get("proposals"))]);
  if (mine !== epoch) return;
  if (access("supply", ok(supply) ? null : supply)) {
    showRun(supply);
    const pairs = offerPairs($("supply-pair"), supply.weeks);
    show($("supply-section"));
    if (pairs.length) drawSupply(supply.weeks, pairs[0]);
    $("supply-pair").onchange = () => drawSupply(supply.weeks, $("supply-pair").value);
  }
  if (access("proposals", ok(proposals) ? null : proposals)) {
    $("proposals-table").tBodies[0].replaceChildren(...proposalRows(proposals.proposals));
    show($("proposals-section"));
  }
}

function pickField(field) {
  $("telemetry-field").value = fieldKey(field);
  offerSensors(field);
  for (const row of $("fields-table").tBodies[0].rows) row.classList.toggle("picked", row.dataset.field === fieldKey(field));
  return drawTelemetry();
}

const pickedField = () => state.fields.find((field) => fieldKey(field) === $("telemetry-field").value);

// Draws are not awaited by their events: a failure is shown beside the chart,
// and a refused key is forgotten.
function shown(promise, where) {
  const mine = epoch;
  return promise.catch((error) => {
    if (mine !== epoch) return;
    if (error instanceof Problem && error.status === 401) forget(`The API refused the key: ${error.detail}`);
    else if (error instanceof Problem) where.textContent = `${error.title}: ${error.detail}`;
    else message(`The dashboard failed: ${error.message}`);
  });
}

function drawTelemetry() {
  const field = pickedField();
  return field ? shown(showTelemetry(field, $("telemetry-sensor").value), $("telemetry-range")) : null;
}

async function onWhatIf(event) {
  event.preventDefault();
  const button = $("whatif-run");
  const status = $("whatif-status");
  const started = Date.now();
  const seconds = () => Math.round((Date.now() - started) / 1000);
  button.disabled = true;
  status.textContent = "running the models…";
  const ticker = setInterval(() => (status.textContent = `running the models… ${seconds()} s`), 1000);
  const mine = epoch;
  try {
    await runWhatIf(state.asOf);
    if (mine === epoch) status.textContent = `done in ${seconds()} s`;
  } catch (error) {
    if (mine !== epoch) return;
    if (error instanceof Problem && error.status === 401) forget(`The API refused the key: ${error.detail}`);
    else if (error instanceof Problem) status.textContent = `${error.title}: ${error.detail}`;
    else throw error;
  } finally {
    clearInterval(ticker);
    button.disabled = false;
  }
}

function boot() {
  $("key-form").addEventListener("submit", onKey);
  $("forget-key").addEventListener("click", () => forget("The key is forgotten: this tab holds none now."));
  $("telemetry-field").addEventListener("change", () => {
    const field = pickedField();
    if (field) pickField(field);
  });
  $("telemetry-sensor").addEventListener("change", drawTelemetry);
  $("balance-pair").addEventListener("change", () =>
    shown(showBalance($("balance-pair").value, state.campaigns), $("balance-chart")),
  );
  $("whatif-form").addEventListener("submit", onWhatIf);
  if (apiKey.get()) start();
  else prompt();
}

boot();
