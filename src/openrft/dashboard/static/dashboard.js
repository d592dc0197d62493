/* openrft dashboard: one page, three views (runs, a job, an eval run) and a comparison, drawn with Chart.js.
 *
 * Routes live in the URL hash: #/ (runs), #/job/<key>, #/eval/<key>, #/compare?key=A&key=B,
 * #/playground/<key> (a job's base model and checkpoints answering one prompt side by side, graded live).
 * Data comes from the JSON endpoints beside this page (relative URLs, so any mount point works).
 * While a run is active the view polls its endpoint and redraws the charts in place when it changed.
 * Every chart is a Chart.js instance on a <canvas id="chart-…">: Chart.getChart(canvas) reads it back.
 */
"use strict";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563",
                "#65a30d", "#9333ea"];
const POLL_MS = 2000;
const state = { charts: new Map(), timer: null, layout: null, signature: null, itemsQuery: null };
window.openrftDashboard = state;

// --- small helpers ------------------------------------------------------------------------------------

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;" }[c]));
}

function fmt(x, digits = 3) {
  if (x === null || x === undefined) return "—";
  if (Array.isArray(x)) return "[" + x.map((v) => fmt(v, digits)).join(", ") + "]";
  if (typeof x === "number") {
    if (Number.isInteger(x)) return String(x);
    return Math.abs(x) < 0.01 ? x.toExponential(1) : x.toFixed(digits);  // a learning rate of 2e-4 is not 0.000
  }
  if (typeof x === "object") return JSON.stringify(x);
  return String(x);
}

function when(unix) {
  return unix ? new Date(unix * 1000).toLocaleString() : "—";
}

function keyPath(key) {
  return key.split("/").map(encodeURIComponent).join("/");
}

function badge(status) {
  return `<span class="badge ${esc(status)}">${esc(status ?? "?")}</span>`;
}

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) {
    let message = response.statusText;
    try {
      const body = await response.json();
      message = body.detail || (body.error && body.error.message) || message;
    } catch (_) { /* not JSON */ }
    throw new Error(`${url}: ${response.status} ${message}`);
  }
  return response.json();
}

function has(values) {
  return Array.isArray(values) && values.some((v) => v !== null && v !== undefined);
}

function points(xs, ys) {
  return xs.map((x, i) => ({ x, y: ys[i] })).filter((p) => p.y !== null && p.y !== undefined);
}

function line(label, data, color, extra = {}) {
  return { label, data, borderColor: color, backgroundColor: color, pointRadius: 3, borderWidth: 2,
           spanGaps: true, tension: 0, ...extra };
}

function axes(xTitle, yTitle, extra = {}) {
  return {
    scales: {
      x: { type: "linear", title: { display: true, text: xTitle }, ticks: { precision: 0 }, ...(extra.x || {}) },
      y: { title: { display: !!yTitle, text: yTitle }, ...(extra.y || {}) },
    },
  };
}

// --- charts -------------------------------------------------------------------------------------------

/* A chart card: `spec` is {id, title, note, config} or, when the run does not report it, config = null. */
function cardHTML(spec) {
  const body = spec.config
    ? `<div class="chart"><canvas id="${esc(spec.id)}" aria-label="${esc(spec.title)}"></canvas></div>`
    : `<div class="absent">${esc(spec.absent || "not reported by this run")}</div>`;
  return `<div class="card" data-chart="${esc(spec.id)}"><h3>${esc(spec.title)}</h3>` +
         (spec.note ? `<p class="note">${esc(spec.note)}</p>` : "") + body + `</div>`;
}

function drawChart(spec) {
  if (!spec.config) return;
  const config = spec.config;
  const options = config.options || {};
  config.options = { animation: false, responsive: true, maintainAspectRatio: false,
    interaction: { mode: "nearest", intersect: false }, ...options,
    plugins: { legend: { labels: { boxWidth: 12 } }, ...(options.plugins || {}) } };
  const old = state.charts.get(spec.id);
  if (old && old.config.type === config.type && old.canvas && old.canvas.isConnected) {
    old.data = config.data;
    old.options = config.options;
    old.update("none");
    return;
  }
  if (old) old.destroy();
  state.charts.set(spec.id, new Chart(document.getElementById(spec.id), config));
}

function clearCharts() {
  for (const chart of state.charts.values()) chart.destroy();
  state.charts.clear();
  state.layout = null;
  state.signature = null;
}

/* Lay out the cards (only when the set of charts changed: live updates then redraw in place) and draw. */
function renderCharts(container, specs) {
  const layout = specs.map((s) => s.id + (s.config ? "" : "-absent")).join("|");
  if (container.dataset.layout !== layout) {
    for (const spec of specs) {
      const old = state.charts.get(spec.id);
      if (old) { old.destroy(); state.charts.delete(spec.id); }
    }
    container.innerHTML = specs.map(cardHTML).join("");
    container.dataset.layout = layout;
  }
  specs.forEach(drawChart);
}

// --- polling ------------------------------------------------------------------------------------------

function stopPolling() {
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
  document.getElementById("live").hidden = true;
}

/* Call `tick` every POLL_MS while `active()` is true; the current route must still be `route`. */
function keepPolling(route, active, tick) {
  stopPolling();
  if (!active()) return;
  document.getElementById("live").hidden = false;
  state.timer = setTimeout(async () => {
    if (location.hash !== route) return;
    try { await tick(); } catch (error) { console.error(error); }
    keepPolling(route, active, tick);
  }, POLL_MS);
}

// --- views --------------------------------------------------------------------------------------------

const view = () => document.getElementById("view");

async function showRuns() {
  const data = await getJSON("api/runs");
  const jobs = data.jobs.map((j) => `<tr>
      <td><a href="#/job/${esc(j.key)}">${esc(j.id)}</a></td><td>${badge(j.status)}</td>
      <td>${esc(j.model)}</td><td>${esc(j.task ?? "—")}</td>
      <td class="num">${j.step ? `${j.step}/${j.total_steps ?? "?"}` : "—"}</td>
      <td class="num">${fmt(j.best_valid_reward)}${j.best_step ? ` <span class="muted">(step ${j.best_step})</span>` : ""}</td>
      <td>${esc(j.fine_tuned_model ?? "")}${j.error ? `<div class="error">${esc(j.error)}</div>` : ""}</td>
      <td>${when(j.created_at)}</td></tr>`).join("");
  const evals = data.evals.map((e) => `<tr>
      <td><input type="checkbox" class="pick" value="${esc(e.key)}"></td>
      <td><a href="#/eval/${esc(e.key)}">${esc(e.name || e.id)}</a></td><td>${badge(e.status)}</td>
      <td>${esc(e.model ?? "—")}</td><td>${esc(e.task ?? "—")}</td>
      <td class="num">${fmt(e.reward_mean)}</td><td class="num">${e.runs ?? "—"}</td>
      <td>${e.error ? `<span class="error">${esc(e.error)}</span>` : when(e.created_at)}</td></tr>`).join("");
  view().innerHTML = `
    <h1>Fine-tuning jobs</h1>
    ${data.jobs.length ? `<table id="jobs"><tr><th>job</th><th>status</th><th>model</th><th>task</th><th>step</th>
      <th>best validation reward</th><th>fine-tuned model</th><th>created</th></tr>${jobs}</table>`
      : `<p class="muted">no jobs yet</p>`}
    <h1>Eval runs</h1>
    ${data.evals.length ? `<table id="evals"><tr><th></th><th>run</th><th>status</th><th>model</th><th>task</th>
      <th>mean reward</th><th>runs per item</th><th>created</th></tr>${evals}</table>
      <p><button id="compare-picked">compare selected</button></p>` : `<p class="muted">no eval runs yet</p>`}`;
  const button = document.getElementById("compare-picked");
  if (button) button.onclick = () => goCompare([...document.querySelectorAll("input.pick:checked")].map((i) => i.value));
  const route = location.hash;
  const active = [...data.jobs, ...data.evals].some((r) => ["running", "queued", "validating_files", "in_progress"]
    .includes(r.status));
  keepPolling(route, () => active, async () => { if (location.hash === route) await showRuns(); });
}

function goCompare(keys) {
  location.hash = "#/compare?" + keys.map((k) => "key=" + encodeURIComponent(k)).join("&");
}

// A job: summary facts, the chart grid, the checkpoints and the latest events; polled while it runs.
async function showJob(key) {
  const route = location.hash;
  const v = await getJSON("api/job/" + keyPath(key));
  view().innerHTML = `<div id="job-head"></div>
    <div class="grid" id="job-charts"></div>
    <h2>${v.method === "reinforcement" ? "RL internals" : "Training (" + esc(v.method) + ")"}</h2>
    <div class="grid small" id="train-charts"></div>
    <h2>Checkpoints</h2><div id="checkpoints"></div>
    <h2>Events</h2><div id="events"></div>`;
  const draw = (v) => {
    document.getElementById("job-head").innerHTML = jobHead(v);
    renderCharts(document.getElementById("job-charts"), jobCharts(v));
    renderCharts(document.getElementById("train-charts"), trainCharts(v));
    document.getElementById("checkpoints").innerHTML = checkpointsTable(v);
    document.getElementById("events").innerHTML = v.messages.length ? `<table>${v.messages.slice().reverse()
      .map((m) => `<tr><td>${when(m.created_at)}</td><td>${esc(m.level)}</td><td>${esc(m.message)}</td></tr>`)
      .join("")}</table>` : `<p class="muted">no events</p>`;
    const button = document.getElementById("compare-ckpts");
    if (button) button.onclick = () => goCompare([...document.querySelectorAll("input.ckpt:checked")].map((i) => i.value));
    state.signature = v.signature;
    state.active = v.active;
  };
  draw(v);
  keepPolling(route, () => state.active, async () => {
    const next = await getJSON("api/job/" + keyPath(key));
    if (next.signature !== state.signature || next.active !== state.active) draw(next);
  });
}

function jobHead(v) {
  const progress = v.step && v.total_steps ? Math.min(100, (100 * v.step) / v.total_steps) : 0;
  const flat = Object.entries(v.hyperparameters || {}).flatMap(([k, x]) => x && typeof x === "object"
    ? Object.entries(x).filter(([, x2]) => !x2 || typeof x2 !== "object").map(([k2, x2]) => [`${k}.${k2}`, x2])
    : [[k, x]]);
  const hp = flat.map(([k, x]) => `${esc(k)}=${esc(fmt(x))}`).join(", ");
  return `<h1>Job ${esc(v.id)} ${badge(v.status)}
      <a class="playground-link" href="#/playground/${esc(v.key)}">playground ›</a></h1>
    <div class="facts">
      <div><span>model</span>${esc(v.model)}</div>
      <div><span>task</span>${esc(v.task ?? "—")}</div>
      <div><span>grader</span>${esc(v.grader.type ?? "—")} ${esc(v.grader.name ?? "")}</div>
      <div><span>step</span>${v.step ?? 0} / ${v.total_steps ?? "?"}</div>
      <div><span>best validation reward</span><b>${fmt(v.best_valid_reward)}</b>
        ${v.best_step ? `(step ${v.best_step})` : ""}</div>
      ${v.fine_tuned_model ? `<div><span>fine-tuned model</span><code>${esc(v.fine_tuned_model)}</code></div>` : ""}
    </div>
    <div class="progress"><div style="width:${progress}%"></div></div>
    <p class="muted">${hp}</p>
    ${v.error && v.error.message ? `<p class="error">${esc(v.error.message)}</p>` : ""}
    ${v.guards.length ? `<ul id="guards" class="guards">${v.guards.map((g) => `<li class="${esc(g.verdict)}">
      ▲ step ${esc(g.step ?? "?")} · <b>${esc(g.check)}</b> (${esc(g.verdict)}): ${esc(g.message)}</li>`).join("")}</ul>` : ""}`;
}

function jobCharts(v) {
  const s = v.series;
  const steps = s.step;
  const xmin = steps.length ? steps[0] : 0;
  const xmax = steps.length ? steps[steps.length - 1] : 1;
  const specs = [];

  // Reward: train is noisy (a fresh batch per step), validation is the stable signal; baselines for scale.
  const reward = [line("train", points(steps, s.reward.train), COLORS[0]),
                  line("validation", points(steps, s.reward.valid), COLORS[1], { pointRadius: 4 })];
  Object.entries(v.baselines || {}).forEach(([name, b], i) => {
    if (b.reward !== null && b.reward !== undefined) {
      reward.push(line(`baseline: ${name}`, [{ x: xmin, y: b.reward }, { x: xmax, y: b.reward }], COLORS[7 + i],
                       { borderDash: [6, 4], pointRadius: 0, borderWidth: 1 }));
    }
  });
  const warned = v.guards.filter((g) => g.step !== null && g.step !== undefined);
  if (warned.length) {
    const trainAt = Object.fromEntries(steps.map((step, i) => [step, s.reward.train[i] ?? s.reward.valid[i]]));
    reward.push(line("guard warning", warned.map((g) => ({ x: g.step, y: trainAt[g.step] ?? 0, message: g.message })),
                     "#b91c1c", { showLine: false, pointStyle: "triangle", pointRadius: 9 }));
  }
  if (v.best_step !== null && v.best_step !== undefined) {
    reward.push(line("best checkpoint", [{ x: v.best_step, y: v.best_valid_reward }], "#d97706",
                     { showLine: false, pointStyle: "star", pointRadius: 12, borderWidth: 2 }));
  }
  specs.push({ id: "chart-reward", title: "Reward", config: has(s.reward.train) || has(s.reward.valid)
    ? { type: "line", data: { datasets: reward }, options: { ...axes("step", "mean reward"), plugins: { tooltip: {
        callbacks: { afterLabel: (c) => c.raw.message || "" } } } } } : null,
    note: "train: this step's batch (noisy); validation: the whole validation set" });

  // Per grader: which grader drives the reward (dashed: train, solid: validation).
  const graders = [];
  s.graders.forEach((g, i) => {
    graders.push(line(`${g.name} train`, points(steps, g.train), COLORS[i % COLORS.length], { borderDash: [5, 4], pointRadius: 2 }));
    if (has(g.valid)) graders.push(line(`${g.name} valid`, points(steps, g.valid), COLORS[i % COLORS.length]));
  });
  specs.push({ id: "chart-graders", title: "Reward per grader", note: "dashed: train, solid: validation",
    config: s.graders.length ? { type: "line", data: { datasets: graders }, options: axes("step", "mean reward") } : null });

  // Precision and recall of each validation run (label tasks).
  const pr = s.precision_recall;
  specs.push({ id: "chart-pr-steps", title: "Precision / recall per checkpoint", note: "micro averages on validation",
    absent: "the grader reports no precision/recall (not a label task)",
    config: has(pr.precision) ? { type: "line", data: { datasets: [
      line("precision", points(pr.step, pr.precision), COLORS[0]),
      line("recall", points(pr.step, pr.recall), COLORS[1]),
      line("F1", points(pr.step, pr.f1), COLORS[2])] },
      options: axes("step", "", { y: { min: 0, max: 1 } }) } : null });
  const trade = [{ label: "checkpoints", data: pr.step.map((step, i) => ({ x: pr.recall[i], y: pr.precision[i], step }))
    .filter((p) => p.x !== null && p.y !== null), borderColor: COLORS[0], backgroundColor: COLORS[0], pointRadius: 5,
    showLine: true, borderWidth: 1 }];
  Object.entries(v.baselines || {}).forEach(([name, b], i) => {
    if (b.precision !== null && b.precision !== undefined) {
      trade.push({ label: `baseline: ${name}`, data: [{ x: b.recall, y: b.precision }], pointStyle: "rect",
                   pointRadius: 7, borderColor: COLORS[7 + i], backgroundColor: COLORS[7 + i] });
    }
  });
  specs.push({ id: "chart-pr-trade", title: "Precision vs recall", note: "one point per checkpoint (line in step order)",
    absent: "the grader reports no precision/recall (not a label task)",
    config: has(pr.precision) ? { type: "scatter", data: { datasets: trade }, options: {
      ...axes("recall", "precision", { x: { min: 0, max: 1, ticks: {} }, y: { min: 0, max: 1 } }),
      plugins: { tooltip: { callbacks: { label: (c) => `${c.raw.step !== undefined ? (c.raw.step ? "step " + c.raw.step : "base model") + ": " : ""}` +
        `P ${fmt(c.raw.y)} R ${fmt(c.raw.x)}` } } } } } : null });

  // Tokens: how long reasoning and answers get.
  const t = s.tokens;
  const tokens = [["train reasoning", t.train_reasoning, 0, []], ["valid reasoning", t.valid_reasoning, 0, [5, 4]],
                  ["train answer", t.train_answer, 2, []], ["valid answer", t.valid_answer, 2, [5, 4]]]
    .filter(([, values]) => has(values))
    .map(([label, values, c, dash]) => line(label, points(steps, values), COLORS[c], { borderDash: dash }));
  specs.push({ id: "chart-tokens", title: "Reasoning and answer tokens", note: "mean tokens per sample",
    config: tokens.length ? { type: "line", data: { datasets: tokens }, options: axes("step", "tokens") } : null });

  // Where the time goes.
  const timing = ["sampling", "training", "eval", "other"].filter((k) => has(s.timing[k]))
    .map((k, i) => ({ label: k, data: s.timing[k], backgroundColor: COLORS[i] }));
  specs.push({ id: "chart-duration", title: "Per-step duration", note: "seconds, stacked: sampling, training, eval, other",
    config: timing.length ? { type: "bar", data: { labels: steps, datasets: timing },
      options: { scales: { x: { stacked: true, title: { display: true, text: "step" } },
                           y: { stacked: true, title: { display: true, text: "seconds" } } } } } : null });

  // Graders: latency and errors by kind.
  const latency = [];
  s.grader_latency.forEach((g, i) => {
    if (has(g.train)) latency.push(line(`${g.name} train`, points(steps, g.train), COLORS[i % COLORS.length], { borderDash: [5, 4] }));
    if (has(g.valid)) latency.push(line(`${g.name} valid`, points(steps, g.valid), COLORS[i % COLORS.length]));
  });
  specs.push({ id: "chart-latency", title: "Grader latency", note: "mean execution seconds per sample",
    config: latency.length ? { type: "line", data: { datasets: latency }, options: axes("step", "seconds") } : null });
  const kinds = Object.keys(s.errors);
  const errors = Object.entries(s.errors).filter(([, values]) => values.some((n) => n)).map(([kind, values], i) =>
    ({ label: kind, data: values, backgroundColor: COLORS[(i + 1) % COLORS.length] }));
  specs.push({ id: "chart-errors", title: "Grader errors by kind", note: "count per step (train + validation)",
    absent: kinds.length ? `no grader errors (${kinds.length} kinds counted)` : "not reported by this run",
    config: errors.length ? { type: "bar", data: { labels: steps, datasets: errors },
      options: { scales: { x: { stacked: true, title: { display: true, text: "step" } },
                           y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } } } : null });

  const usage = [];
  s.grader_tokens.forEach((g, i) => {
    usage.push(line(`${g.name} prompt`, points(steps, g.prompt), COLORS[i % COLORS.length]));
    usage.push(line(`${g.name} completion`, points(steps, g.completion), COLORS[i % COLORS.length], { borderDash: [5, 4] }));
  });
  specs.push({ id: "chart-grader-tokens", title: "Grading token usage", note: "model graders: tokens per step",
    absent: "no model graders in this job",
    config: usage.length ? { type: "line", data: { datasets: usage }, options: axes("step", "tokens") } : null });
  return specs;
}

function trainCharts(v) {
  const s = v.series;
  const notes = { kl: "KL divergence to the reference policy", clip_fraction: "share of tokens whose ratio was clipped",
    entropy: "mean token entropy of the policy", zero_signal_groups: "groups whose samples all got the same reward",
    loss: "policy loss", grad_norm: "gradient norm before clipping", response_length_mean: "mean sampled tokens" };
  const keys = Object.keys(s.train);
  if (!keys.length) return [{ id: "chart-train-none", title: "RL internals", config: null }];
  return keys.map((k, i) => ({ id: `chart-train-${k}`, title: k, note: notes[k] || "",
    config: { type: "line", data: { datasets: [line(k, points(s.step, s.train[k]), COLORS[i % COLORS.length])] },
              options: { ...axes("step", ""), plugins: { legend: { display: false } } } } }));
}

function checkpointsTable(v) {
  if (!v.checkpoints.length) return `<p class="muted">no checkpoints yet</p>`;
  const evalByStep = Object.fromEntries(v.step_evals.map((e) => [e.step, e]));
  const rows = v.checkpoints.map((c) => {
    const e = evalByStep[c.step];
    return `<tr${c.best ? ' class="best-row"' : ""}>
      <td>${e ? `<input type="checkbox" class="ckpt" value="${esc(e.key)}">` : ""}</td>
      <td class="num">${c.step}</td><td>${c.best ? '<span class="best" title="best validation reward">★ best</span>' : ""}</td>
      <td class="num">${fmt(c.valid_reward)}</td><td class="num">${e ? fmt(e.f1) : "—"}</td>
      <td><code>${esc(c.model ?? "")}</code></td>
      <td>${e ? `<a href="#/eval/${esc(e.key)}">validation run</a>` : ""}</td>
      <td class="muted">${esc(Object.entries(c.metrics || {}).filter(([k]) => k !== "step")
        .map(([k, x]) => `${k}=${fmt(x)}`).join(", "))}</td></tr>`;
  }).join("");
  return `<table id="checkpoint-table"><tr><th></th><th>step</th><th></th><th>validation reward</th><th>F1</th>
    <th>model</th><th></th><th>metrics</th></tr>${rows}</table>
    <p><button id="compare-ckpts">compare selected checkpoints</button></p>`;
}

// An eval run: headline figures, variance study, histogram, precision/recall, and the output items.
async function showEval(key) {
  const v = await getJSON("api/eval/" + keyPath(key));
  const figures = v.figures.map(([name, value]) => `<tr><th>${esc(name)}</th><td class="num">${fmt(value)}</td></tr>`).join("");
  const parent = v.parent ? `<p>validation run of job <a href="#/job/${esc(v.parent)}">${esc(v.parent)}</a></p>` : "";
  view().innerHTML = `<h1>Eval run ${esc(v.name || v.id)} ${badge(v.status)}</h1>${parent}
    <div class="facts"><div><span>model</span>${esc(v.model ?? "—")}</div>
      <div><span>output items</span>${v.n_output_items}</div>
      <div><span>runs per item</span>${v.runs ?? "—"}</div>
      ${v.result_counts ? `<div><span>passed / failed / errored</span>${v.result_counts.passed} / ${v.result_counts.failed}
        / ${v.result_counts.errored}</div>` : ""}</div>
    <div class="grid" id="eval-charts"></div>
    <h2>Figures</h2><table id="figures" style="max-width:640px">${figures}</table>
    <h2>Output items</h2>
    <div class="controls">
      <select id="items-status"><option value="">all</option><option>pass</option><option>fail</option><option>error</option></select>
      <select id="items-order"><option value="item">by item</option><option value="reward_asc">lowest reward first</option>
        <option value="reward_desc">highest reward first</option></select>
      <input type="search" id="items-q" placeholder="search text">
      <button class="secondary" id="items-prev">◀</button><span id="items-range"></span>
      <button class="secondary" id="items-next">▶</button>
    </div>
    <div id="items"></div>`;
  renderCharts(document.getElementById("eval-charts"), evalCharts(v));
  state.itemsQuery = { key, offset: 0, limit: 20 };
  const reload = () => { state.itemsQuery.offset = 0; loadItems(); };
  document.getElementById("items-status").onchange = reload;
  document.getElementById("items-order").onchange = reload;
  document.getElementById("items-q").onchange = reload;
  document.getElementById("items-prev").onclick = () => {
    state.itemsQuery.offset = Math.max(0, state.itemsQuery.offset - state.itemsQuery.limit); loadItems(); };
  document.getElementById("items-next").onclick = () => {
    if (state.itemsQuery.offset + state.itemsQuery.limit < state.itemsQuery.total) {
      state.itemsQuery.offset += state.itemsQuery.limit; loadItems(); } };
  await loadItems();
  const route = location.hash;
  keepPolling(route, () => v.active, () => showEval(key));
}

function evalCharts(v) {
  const items = v.variance.items;
  const specs = [{ id: "chart-variance", title: "Variance study",
    note: `items sorted by mean reward; bar: min–max over ${v.variance.runs ?? "?"} runs` +
          (v.variance.headroom !== null && v.variance.headroom !== undefined ? `; headroom ${fmt(v.variance.headroom)}` : ""),
    config: items.length ? { type: "bar", data: { labels: items.map((it) => String(it.item)), datasets: [
      { type: "bar", label: "min–max", data: items.map((it) => [it.min, it.max]), backgroundColor: "rgba(37,99,235,.25)",
        borderColor: COLORS[0], borderWidth: 1, barPercentage: 0.9, categoryPercentage: 1 },
      { type: "line", label: "mean", data: items.map((it) => it.mean), borderColor: COLORS[1], backgroundColor: COLORS[1],
        showLine: false, pointRadius: 3 }] },
      options: { scales: { x: { title: { display: true, text: "items (sorted by mean reward)" }, ticks: { display: items.length <= 40 } },
                           y: { title: { display: true, text: "reward" } } } } } : null }];
  const h = v.histogram;
  specs.push({ id: "chart-histogram", title: "Reward histogram", note: "all samples",
    config: h.counts.length ? { type: "bar", data: { labels: h.counts.map((_, i) => `${fmt(h.edges[i], 2)}–${fmt(h.edges[i + 1], 2)}`),
      datasets: [{ label: "samples", data: h.counts, backgroundColor: COLORS[0], barPercentage: 1, categoryPercentage: 1 }] },
      options: { plugins: { legend: { display: false } }, scales: { x: { title: { display: true, text: "reward" } },
        y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "samples" } } } } } : null });
  const c = v.classification;
  const pr = [];
  const labels = Object.entries(c.per_label).filter(([, m]) => m.support);
  if (labels.length) pr.push({ label: "labels", data: labels.map(([label, m]) => ({ x: m.recall, y: m.precision, label })),
    backgroundColor: "rgba(37,99,235,.45)", pointRadius: 4 });
  if (c.micro) pr.push({ label: "micro", data: [{ x: c.micro.recall, y: c.micro.precision, label: "micro" }],
    backgroundColor: COLORS[1], pointRadius: 8, pointStyle: "triangle" });
  if (c.macro) pr.push({ label: "macro", data: [{ x: c.macro.recall, y: c.macro.precision, label: "macro" }],
    backgroundColor: COLORS[2], pointRadius: 8, pointStyle: "triangle" });
  Object.entries(v.baselines || {}).forEach(([name, b], i) => {
    if (b.precision !== null && b.precision !== undefined) pr.push({ label: `baseline: ${name}`,
      data: [{ x: b.recall, y: b.precision, label: name }], backgroundColor: COLORS[7 + i], pointRadius: 7, pointStyle: "rect" });
  });
  specs.push({ id: "chart-pr-labels", title: "Precision vs recall", note: "per label (support > 0), micro, macro, baselines",
    absent: "no precision/recall: not a label task",
    config: pr.length ? { type: "scatter", data: { datasets: pr }, options: {
      ...axes("recall", "precision", { x: { min: 0, max: 1, ticks: {} }, y: { min: 0, max: 1 } }),
      plugins: { tooltip: { callbacks: { label: (ctx) => `${ctx.raw.label}: P ${fmt(ctx.raw.y)} R ${fmt(ctx.raw.x)}` } } } } } : null });
  return specs;
}

async function loadItems() {
  const q = state.itemsQuery;
  const params = new URLSearchParams({ offset: q.offset, limit: q.limit,
    status: document.getElementById("items-status").value, order: document.getElementById("items-order").value,
    q: document.getElementById("items-q").value });
  const page = await getJSON(`api/items/${keyPath(q.key)}?${params}`);
  q.total = page.total;
  document.getElementById("items-range").textContent = page.total
    ? `${page.offset + 1}–${page.offset + page.items.length} of ${page.total}` : "none";
  document.getElementById("items").innerHTML = page.items.map(itemHTML).join("");
}

function itemHTML(it) {
  const grades = it.results.map((r) => `<tr><td>${esc(r.name)}</td><td>${esc(r.type ?? "")}</td>
      <td class="num">${fmt(r.score)}</td><td>${r.passed ? "pass" : "fail"}</td>
      <td>${esc(Object.entries(r.sub_rewards || {}).map(([k, x]) => `${k}=${fmt(x)}`).join(", "))}</td>
      <td class="error">${esc(r.error_kind ?? "")}</td></tr>`).join("");
  return `<details class="item"><summary>${badge(it.status)} <span>item ${esc(it.datasource_item_id)}` +
    `${it.run !== null && it.run !== undefined ? ` · run ${esc(it.run)}` : ""}</span>
      <b>${fmt(it.reward)}</b><code>${esc(it.output.slice(0, 160))}</code></summary>
    <div class="body"><div><h4>prompt</h4>${it.input.map((m) => `<div class="muted">${esc(m.role)}</div><pre>${esc(m.content)}</pre>`).join("")}
      <h4>reference</h4><pre>${esc(JSON.stringify(it.reference, null, 1))}</pre></div>
      <div>${it.reasoning ? `<h4>reasoning</h4><pre>${esc(it.reasoning)}</pre>` : ""}<h4>answer</h4><pre>${esc(it.output)}</pre>
      ${it.error ? `<p class="error">${esc(it.error)}</p>` : ""}
      <h4>grades</h4><table><tr><th>grader</th><th>type</th><th>score</th><th></th><th>sub-rewards</th><th>error</th></tr>${grades}</table>
      <p class="muted">finish: ${esc(it.finish_reason ?? "—")}; tokens: ${esc(JSON.stringify(it.usage ?? {}))}</p></div></div>
  </details>`;
}

// Several eval runs (models, checkpoints) side by side.
async function showCompare(keys) {
  const runs = await getJSON("api/runs");
  const picker = runs.eval_keys.map((k) => `<label><input type="checkbox" class="pick" value="${esc(k)}"
    ${keys.includes(k) ? "checked" : ""}> ${esc(k)}</label>`).join("");
  view().innerHTML = `<h1>Compare eval runs</h1><div class="picker">${picker || "<span class='muted'>no eval runs</span>"}</div>
    <p><button id="compare-go">compare</button></p><div id="compare-body"></div>`;
  document.getElementById("compare-go").onclick = () => goCompare([...document.querySelectorAll("input.pick:checked")].map((i) => i.value));
  if (!keys.length) {
    document.getElementById("compare-body").innerHTML = `<p class="muted">pick two or more runs (a job's validation runs
      compare its checkpoints)</p>`;
    return;
  }
  const data = await getJSON("api/compare?" + keys.map((k) => "key=" + encodeURIComponent(k)).join("&"));
  const rows = data.runs;
  const table = rows.map((r) => `<tr><td>${r.key ? `<a href="#/eval/${esc(r.key)}">${esc(r.name)}</a>` : esc(r.name)}</td>
    <td>${esc(r.model ?? "")}</td><td class="num">${fmt(r.reward)}</td><td class="num">${fmt(r.ci95)}</td>
    <td class="num">${fmt(r.run_to_run_std, 4)}</td><td class="num">${fmt(r.micro_precision)}</td>
    <td class="num">${fmt(r.micro_recall)}</td><td class="num">${fmt(r.micro_f1)}</td>
    <td class="num">${r.vs_first_diff !== undefined ? (r.vs_first_diff >= 0 ? "+" : "") + fmt(r.vs_first_diff) : ""}</td>
    <td>${r.vs_first_significant === undefined ? "" : (r.vs_first_significant ? "yes" : "no") + ` <span class="muted">(${esc(r.vs_first_rule)})</span>`}</td></tr>`).join("");
  document.getElementById("compare-body").innerHTML = `<table id="compare-table"><tr><th>run</th><th>model</th><th>mean reward</th>
    <th>95% CI</th><th>run-to-run std</th><th>P</th><th>R</th><th>F1</th><th>Δ vs first</th><th>beyond noise?</th></tr>${table}</table>
    <div class="grid" id="compare-charts" style="margin-top:1em"></div>`;
  const names = rows.map((r) => r.name);
  const specs = [{ id: "chart-compare-reward", title: "Mean reward", note: "bar: mean; thin bar: 95% interval over items",
    config: { type: "bar", data: { labels: names, datasets: [
      { label: "mean reward", data: rows.map((r) => r.reward), backgroundColor: rows.map((r, i) => r.key ? COLORS[i % COLORS.length] : "#9ca3af") },
      { label: "95% CI", data: rows.map((r) => r.ci95 || null), backgroundColor: "rgba(0,0,0,.55)", grouped: false, barPercentage: 0.08 }] },
      options: { scales: { y: { beginAtZero: true, title: { display: true, text: "reward" } } } } } }];
  const withHist = rows.filter((r) => r.histogram && r.histogram.counts.length);
  if (withHist.length) {
    const edges = withHist[0].histogram.edges;
    specs.push({ id: "chart-compare-hist", title: "Reward distribution", note: "share of samples per reward bin",
      config: { type: "line", data: { datasets: withHist.map((r, i) => {
        const total = r.histogram.counts.reduce((a, b) => a + b, 0) || 1;
        return line(r.name, r.histogram.counts.map((n, j) => ({ x: (edges[j] + edges[j + 1]) / 2, y: n / total })), COLORS[i % COLORS.length]);
      }) }, options: axes("reward", "share of samples", { x: { ticks: {} } }) } });
  }
  const prRows = rows.filter((r) => r.micro_precision !== undefined && r.micro_precision !== null);
  specs.push({ id: "chart-compare-pr", title: "Precision vs recall", note: "micro averages; squares: baselines",
    absent: "no precision/recall: not a label task",
    config: prRows.length ? { type: "scatter", data: { datasets: prRows.map((r, i) => ({ label: r.name,
      data: [{ x: r.micro_recall, y: r.micro_precision }], pointRadius: 7, pointStyle: r.key ? "circle" : "rect",
      backgroundColor: COLORS[i % COLORS.length] })) },
      options: axes("recall", "precision", { x: { min: 0, max: 1, ticks: {} }, y: { min: 0, max: 1 } }) } : null });
  renderCharts(document.getElementById("compare-charts"), specs);
}

// --- playground ---------------------------------------------------------------------------------------

/* One prompt (free, or a validation item) sent to the chosen models of a job, one request per model: each
 * answer fills its own column as soon as it is graded. */
async function showPlayground(key) {
  const v = await getJSON("api/playground/" + keyPath(key));
  const pickDefault = (m, i) => m.id === "base" || i === v.models.length - 1;
  const models = v.models.map((m, i) => `<label><input type="checkbox" class="pg-model" value="${esc(m.id)}"
    ${pickDefault(m, i) ? "checked" : ""}> ${esc(m.label)}${m.valid_reward !== undefined && m.valid_reward !== null
    ? ` <span class="muted">(valid ${fmt(m.valid_reward)})</span>` : ""}</label>`).join("");
  const items = v.items.map((it) => `<option value="${it.index}">#${it.index}: ${esc(it.preview)}</option>`).join("");
  const rf = v.response_format;
  const rfName = rf ? (rf.json_schema && rf.json_schema.name) || rf.type : "none (free text)";
  view().innerHTML = `<h1>Playground: job <a href="#/job/${esc(v.key)}">${esc(v.id)}</a></h1>
    <div class="facts"><div><span>grader</span>${esc(v.grader.type ?? "—")} ${esc(v.grader.name ?? "")}</div>
      <div><span>response_format</span>${esc(rfName)}</div></div>
    <div class="playground-form card">
      <label>validation item <select id="pg-item"><option value="">— free prompt (graded against an empty item) —</option>
        ${items}</select></label>
      <textarea id="pg-prompt" rows="6" placeholder="the user message"></textarea>
      <div class="picker" id="pg-models">${models}</div>
      <div class="controls"><label>temperature <input id="pg-temperature" type="number" min="0" max="2" step="0.1"
        value="0"></label><label>max tokens <input id="pg-max-tokens" type="number" min="1" value="${v.max_tokens}"></label>
        <button id="pg-run">run</button></div>
    </div>
    <div class="grid" id="pg-answers"></div>`;
  const select = document.getElementById("pg-item");
  const prompt = document.getElementById("pg-prompt");
  const itemMessages = () => (select.value === "" ? [] : v.items[Number(select.value)].messages);
  select.onchange = () => {
    const user = itemMessages().filter((m) => m.role === "user").pop();
    prompt.value = user ? user.content : "";
  };
  document.getElementById("pg-run").onclick = () => runPlayground(v, itemMessages());
}

/* The messages sent: the item's, with its last user message replaced by the prompt box's text. */
function playgroundMessages(base, text) {
  const messages = base.map((m) => ({ role: m.role, content: m.content }));
  const last = messages.map((m) => m.role).lastIndexOf("user");
  if (last >= 0) messages[last].content = text;
  else messages.push({ role: "user", content: text });
  return messages;
}

async function runPlayground(v, itemMessages) {
  const text = document.getElementById("pg-prompt").value;
  const item = document.getElementById("pg-item").value;
  const picked = [...document.querySelectorAll("input.pg-model:checked")].map((i) => i.value);
  const out = document.getElementById("pg-answers");
  if (!text.trim() || !picked.length) {
    out.innerHTML = `<p class="error">write a prompt (or pick a validation item) and pick at least one model</p>`;
    return;
  }
  const body = { messages: playgroundMessages(itemMessages, text), item: item === "" ? null : Number(item),
    temperature: Number(document.getElementById("pg-temperature").value || 0),
    max_tokens: Number(document.getElementById("pg-max-tokens").value || v.max_tokens) };
  const labels = Object.fromEntries(v.models.map((m) => [m.id, m.label]));
  out.innerHTML = picked.map((id) => `<div class="card answer" data-model="${esc(id)}" data-state="pending">
    <h3>${esc(labels[id])}</h3><p class="muted">answering…</p></div>`).join("");
  await Promise.all(picked.map(async (id) => {
    const card = out.querySelector(`.answer[data-model="${CSS.escape(id)}"]`);
    try {
      const response = await fetch("api/playground/" + keyPath(v.key), { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...body, model: id }) });
      const a = await response.json();
      if (!response.ok) throw new Error(a.detail || response.statusText);
      card.innerHTML = answerCard(labels[id], a);
      card.dataset.state = "done";
    } catch (error) {
      card.innerHTML = `<h3>${esc(labels[id])}</h3><p class="error">${esc(error.message)}</p>`;
      card.dataset.state = "error";
    }
  }));
}

function answerCard(label, a) {
  const grade = a.grade || {};
  const errors = Object.entries((grade.metadata || {}).errors || {}).filter(([, x]) => x === true).map(([k]) => k);
  const subs = Object.entries(grade.sub_rewards || {}).map(([k, x]) => `${esc(k)}=${fmt(x)}`).join(", ");
  return `<h3>${esc(label)}</h3>
    <div class="facts"><div><span>reward</span><b class="reward">${fmt(a.reward)}</b></div>
      <div><span>tokens</span>${a.completion_tokens}</div><div><span>time</span>${fmt(a.seconds, 2)} s</div>
      <div><span>finish</span>${esc(a.finish_reason)}</div></div>
    ${a.reasoning_text ? `<h4>reasoning</h4><pre>${esc(a.reasoning_text)}</pre>` : ""}
    <h4>answer</h4><pre class="output">${esc(a.output_text)}</pre>
    ${a.parse_error ? `<p class="error">parse error: ${esc(a.parse_error)}</p>` : ""}
    ${a.error ? `<p class="error">${esc(a.error)}</p>` : ""}
    ${errors.length ? `<p class="error">grader: ${esc(errors.join(", "))} ${esc((grade.metadata || {}).openrft_error || "")}</p>` : ""}
    <p class="muted">graded against the ${esc(a.graded_against)}${subs ? `; sub-rewards ${subs}` : ""}</p>`;
}

// --- routing ------------------------------------------------------------------------------------------

async function render() {
  stopPolling();
  clearCharts();
  document.body.dataset.ready = "0";
  const hash = location.hash || "#/";
  try {
    if (hash.startsWith("#/job/")) await showJob(decodeURIComponent(hash.slice(6)));
    else if (hash.startsWith("#/eval/")) await showEval(decodeURIComponent(hash.slice(7)));
    else if (hash.startsWith("#/playground/")) await showPlayground(decodeURIComponent(hash.slice(13)));
    else if (hash.startsWith("#/compare")) {
      const query = new URLSearchParams(hash.split("?")[1] || "");
      await showCompare(query.getAll("key"));
    } else await showRuns();
  } catch (error) {
    view().innerHTML = `<p class="error">${esc(error.message)}</p>`;
  }
  document.body.dataset.ready = "1";
}

window.addEventListener("hashchange", render);
render();
