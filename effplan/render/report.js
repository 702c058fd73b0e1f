
'use strict';
const D = JSON.parse(document.getElementById('data').textContent);
const app = document.getElementById('app'), tip = document.getElementById('tip');
const esc = s => String(s).replace(/[&<>"]/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
const nd = v => v === null || v === undefined;
const F = {
  int: v => nd(v) ? '' : v.toLocaleString('en-US'),
  mib: v => nd(v) ? '-' : (v / 2 ** 20).toFixed(3),
  MiB: v => nd(v) ? '-' : (v / 2 ** 20).toFixed(1) + ' MiB',
  pct: v => nd(v) ? '-' : (v * 100).toFixed(1) + '%',
  us: v => nd(v) ? '-' : (v * 1e6).toFixed(2),
  g: v => nd(v) ? '-' : Number(v.toPrecision(4)).toString(),
  shape: v => nd(v) ? '' : v.join('x'),
  text: v => nd(v) ? '' : String(v),
};
const COLORS = %COLORS%;
const BOUNDS = ['compute', 'memory', 'host'];
document.addEventListener('mouseover', e => {
  const t = e.target.closest && e.target.closest('[data-tip]');
  if (!t) { tip.hidden = true; return; }
  tip.textContent = t.getAttribute('data-tip'); tip.hidden = false;
});
document.addEventListener('mousemove', e => { tip.style.left = e.pageX + 14 + 'px'; tip.style.top = e.pageY + 14 + 'px'; });
function h(tag, attrs, html) {
  const el = document.createElement(tag);
  for (const k in attrs || {}) el.setAttribute(k, attrs[k]);
  if (html !== undefined) el.innerHTML = html;
  return el;
}
function add(parent, tag, attrs, html) { const el = h(tag, attrs, html); parent.appendChild(el); return el; }

// ---- charts: scales, axes, marks ----
function nice(x) { const p = 10 ** Math.floor(Math.log10(x)), m = x / p; return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p; }
function scale(lo, hi, a, b, log) {
  const f = log ? Math.log10 : x => x, l = f(lo), u = f(hi);
  const s = v => a + (b - a) * (f(v) - l) / ((u - l) || 1);
  s.ticks = () => {
    const t = [];
    if (log) { for (let e = Math.ceil(l - 1e-9); e <= Math.floor(u + 1e-9); e++) t.push(10 ** e); return t; }
    const step = nice((hi - lo) / 5 || 1);
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push(v);
    return t;
  };
  return s;
}
const W = 680, H = 380, M = {l: 70, r: 20, t: 16, b: 44};
function frame(x, y, xlabel, ylabel, xfmt, yfmt) {
  let s = '';
  for (const v of x.ticks()) s += `<line class="grid" x1="${x(v)}" x2="${x(v)}" y1="${M.t}" y2="${H - M.b}"/><text x="${x(v)}" y="${H - M.b + 14}" text-anchor="middle">${xfmt(v)}</text>`;
  for (const v of y.ticks()) s += `<line class="grid" x1="${M.l}" x2="${W - M.r}" y1="${y(v)}" y2="${y(v)}"/><text x="${M.l - 4}" y="${y(v) + 4}" text-anchor="end">${yfmt(v)}</text>`;
  s += `<rect class="ax" x="${M.l}" y="${M.t}" width="${W - M.l - M.r}" height="${H - M.t - M.b}" fill="none"/>`;
  s += `<text x="${(M.l + W - M.r) / 2}" y="${H - 8}" text-anchor="middle">${esc(xlabel)}</text>`;
  s += `<text transform="translate(14 ${(M.t + H - M.b) / 2}) rotate(-90)" text-anchor="middle">${esc(ylabel)}</text>`;
  return s;
}
function chart(parent, cls, body, w, hgt) {
  const d = add(parent, 'div');
  d.innerHTML = `<svg class="${cls}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w || W} ${hgt || H}" width="${w || W}" height="${hgt || H}">${body}</svg>`;
  return d;
}
function legend(parent, items) { add(parent, 'div', {class: 'legend'}, items.map(([c, t]) => `<span><i style="background:${c}"></i>${esc(t)}</span>`).join('')); }
const si = v => { for (const [u, p] of [['T', 1e12], ['G', 1e9], ['M', 1e6], ['k', 1e3]]) if (Math.abs(v) >= p) return F.g(v / p) + u; return F.g(v); };
const range = (vals, pad) => { const lo = Math.min(...vals), hi = Math.max(...vals); return [lo / pad, hi * pad]; };
function marker(unit, x, y, color, tipText) {
  const t = `class="mark" fill="${color}" stroke="#333" stroke-width="0.5" data-tip="${esc(tipText)}"`;
  return unit === 'matrix' ? `<circle cx="${x}" cy="${y}" r="4.5" ${t}/>`
    : `<path d="M${x},${y - 5}L${x + 5},${y + 4}L${x - 5},${y + 4}Z" ${t}/>`;
}

// ---- sortable, filterable table ----
function table(parent, cols, rows, total, opts) {
  // cols: [key, header, format, text?]; rows: objects; total: the last row, or null
  const box = add(parent, 'div');
  const bar = add(box, 'div');
  const filter = add(bar, 'input', {type: 'search', placeholder: 'filter name, op, stage…', class: 'filter'});
  const count = add(bar, 'span', {class: 'note'});
  const wrap = add(box, 'div', {class: 'scroll'});
  const tbl = add(wrap, 'table', {class: (opts && opts.cls) || 'rows'});
  const head = add(tbl, 'thead'), body = add(tbl, 'tbody'), foot = add(tbl, 'tfoot');
  let key = null, desc = true;
  head.innerHTML = '<tr>' + cols.map(c => `<th data-key="${c[0]}" class="${c[3] ? 't' : ''}">${esc(c[1])}</th>`).join('') + '</tr>';
  const cell = (c, r) => `<td class="${c[3] ? 't' : ''}">${c[0] === 'share' ? `<span class="bar" style="width:${Math.round((r.share || 0) * 80)}px"></span>` : ''}${esc(c[2](r[c[0]], r))}</td>`;
  function draw() {
    const q = filter.value.trim().toLowerCase();
    let shown = q ? rows.filter(r => ['name', 'op', 'stage', 'kind', 'model', 'budget', 'limit_key'].some(k => !nd(r[k]) && String(r[k]).toLowerCase().includes(q))) : rows.slice();
    if (key) shown.sort((a, b) => { const x = a[key], y = b[key]; const o = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y)); return desc ? -o : o; });
    body.innerHTML = shown.map(r => '<tr>' + cols.map(c => cell(c, r)).join('') + '</tr>').join('');
    foot.innerHTML = total ? '<tr class="total">' + cols.map(c => cell(c, total)).join('') + '</tr>' : '';
    count.textContent = ` ${shown.length} of ${rows.length} rows` + (key ? `, by ${key} ${desc ? 'largest' : 'smallest'} first` : '');
  }
  head.addEventListener('click', e => {
    const th = e.target.closest('th'); if (!th) return;
    const k = th.dataset.key;
    if (key === k) desc = !desc; else { key = k; desc = !cols.find(c => c[0] === k)[3]; }
    draw();
  });
  filter.addEventListener('input', draw);
  draw();
  return box;
}

// ---- the sections ----
function title(extra) {
  add(app, 'h1', {}, esc(D.title));
  if (extra) add(app, 'div', {class: 'note'}, extra);
  const [first, ...rest] = D.header.replace(/^#\s*/, '').split(' | ');  // the text report's header, one item a line
  const conv = add(app, 'details', {class: 'header'}); add(conv, 'summary', {class: 'note'}, esc(first + ': what the figures count'));
  add(conv, 'ul', {class: 'note'}, rest.map(s => `<li>${esc(s)}</li>`).join(''));
}
function cards(parent, items) { add(parent, 'div', {class: 'cards'}, items.map(([t, v]) => `<div class="card"><b>${esc(v)}</b><span>${esc(t)}</span></div>`).join('')); }
function extras(obj, known) {  // fields newer reports add (a runtime, a step time): shown as they come
  return Object.entries(obj).filter(([k, v]) => !known.includes(k) && v !== null && typeof v !== 'object')
    .map(([k, v]) => [k, typeof v === 'number' ? F.g(v) : String(v)]);
}

function summary() {
  const s = D.summary, t = D.summary_text, sec = add(app, 'section', {id: 'summary'});
  add(sec, 'h2', {}, 'Summary');
  const label = Object.fromEntries(D.summary_columns.map(([hd, k]) => [k, hd]));
  const items = ['params', 'macs', 'flops', 'weight_bytes', 'peak_activation_bytes', 'inference_bytes', 'training_bytes', 'resolution', 'layers']
    .filter(k => !nd(s[k])).map(k => [label[k], t[k]]);
  for (const d of D.devices) items.push([`latency ms on ${d.device} (${d.dtype}${d.runtime ? ', ' + d.runtime : ''})`, d.totals.latency_s_text],
                                        [`images/s on ${d.device}`, d.totals.images_per_s_text]);
  cards(sec, items);
  const known = D.summary_columns.map(c => c[1]).concat(['coefficients', 'classes', 'batch', 'dtype', 'buffers', 'unknown_ops']);
  const more = extras(s, known);
  add(sec, 'p', {class: 'note'}, esc(`${s.model}: φ ${nd(s.phi) ? '-' : s.phi}, d ${t.depth_mult}, w ${t.width_mult}, ${s.resolution}px, coefficients ${s.coefficients}, batch ${s.batch}, ${s.dtype}; ${F.int(s.buffers)} buffers (BN running statistics)`)
    + (more.length ? '<br>' + esc(more.map(([k, v]) => `${k} ${v}`).join(', ')) : ''));
  const conv = add(sec, 'details'); add(conv, 'summary', {}, 'Conventions');
  add(conv, 'ul', {class: 'note'}, Object.entries(D.layers.conventions).map(([k, v]) => `<li><b>${esc(k)}</b>: ${esc(v)}</li>`).join(''));
}

function layerTable() {
  const sec = add(app, 'section', {id: 'layers'});
  add(sec, 'h2', {}, 'Layers');
  const pick = add(sec, 'select', {id: 'by'}, ['layer', 'block', 'stage'].map(b => `<option>${b}</option>`).join(''));
  add(sec, 'span', {class: 'note'}, ' rows per layer (op), block or stage; click a header to sort, again to reverse; MACs % is the share of the whole model');
  const holder = add(sec, 'div');
  const T = D.layers.totals;
  const total = {name: 'total', params: T.params, buffers: T.buffers, macs: T.macs, flops: T.flops, weight_bytes: T.weight_bytes, share: T.macs ? 1 : null};
  function draw() {
    const by = pick.value, perLayer = by === 'layer';
    const cols = [['name', 'name', F.text, 1], ['op', 'op', F.text, 1]]
      .concat(perLayer ? [['kind', 'kind', F.text, 1]] : [])
      .concat([['stage', 'stage', F.text, 1], ['block', 'block', F.text, 1]])
      .concat(perLayer ? [['kernel', 'kernel', F.shape, 1], ['stride', 'stride', F.shape, 1]] : [])
      .concat([['output_shape', 'output', F.shape, 1], ['params', 'params', F.int], ['macs', 'MACs', F.int], ['flops', 'FLOPs', F.int],
               ['weight_bytes', 'weights MiB', F.mib], ['output_bytes', 'output MiB', F.mib], ['share', 'MACs %', F.pct]]);
    holder.innerHTML = '';
    table(holder, cols, perLayer ? D.layers.layers : D.rollups[by], total, {cls: 'layers'});
  }
  pick.addEventListener('change', draw);
  draw();
}

function roofline(d) {
  const sec = add(app, 'section', {class: 'device'});
  const T = d.totals, f = d.device_figures;
  add(sec, 'h2', {}, esc(`Roofline on ${d.device}` + (d.runtime ? `, runtime ${d.runtime}` : '')));
  add(sec, 'p', {class: 'note'}, esc(`${d.dtype}, batch ${d.batch}: latency ${T.latency_s_text} ms, ${T.images_per_s_text} images/s, ${T.kernels} kernels, utilisation ${F.pct(T.utilisation)} of the matrix peak; fusion: ${d.fusion}. ${d.assumptions}`)
    + (extras(T, ['latency_s', 'images_per_s', 'macs', 'flops', 'bytes', 'utilisation', 'kernels', 'latency_s_text', 'images_per_s_text']).map(([k, v]) => `<br>${esc(k)} ${esc(v)}`).join('')));
  const ks = d.kernels.filter(k => k.flops > 0 && k.bytes > 0 && k.flops_per_s > 0);
  const bw = f.bandwidth_bytes_per_s * f.efficiency.bandwidth;
  const peaks = [['matrix', f.matrix_flops_per_s * f.efficiency.matrix], ['vector', f.vector_flops_per_s * f.efficiency.vector]].filter(p => p[1]);
  const [xlo, xhi] = range(ks.map(k => k.intensity).concat(peaks.map(p => p[1] / bw)), 2);
  const [ylo, yhi] = range(ks.map(k => k.flops_per_s).concat(peaks.map(p => p[1])), 2);
  const x = scale(xlo, xhi, M.l, W - M.r, true), y = scale(ylo, yhi, H - M.b, M.t, true);
  let s = frame(x, y, 'arithmetic intensity, FLOP per byte moved', 'achieved FLOP/s (FLOPs / kernel time)', si, si);
  for (const [unit, p] of peaks) {
    const x0 = Math.max(xlo, ylo / bw), ridge = p / bw;
    s += `<path d="M${x(x0)},${y(bw * x0)}L${x(ridge)},${y(p)}L${x(xhi)},${y(p)}" fill="none" stroke="#444" stroke-dasharray="${unit === 'matrix' ? '' : '4 3'}"><title>${unit} roof</title></path>`;
    s += `<text x="${x(xhi) - 4}" y="${y(p) - 4}" text-anchor="end">${unit} ${si(p)}FLOP/s</text>`;
  }
  for (const k of ks) s += marker(k.unit, x(k.intensity), y(k.flops_per_s), COLORS[k.unit + ' ' + k.bound] || '#999',
    `${k.name}\n${k.op}\n${k.unit}, ${k.bound}-bound\n${F.us(k.time_s)} µs (${F.pct(k.share)}), ${F.g(k.intensity)} FLOP/B`);
  const row = add(sec, 'div', {class: 'row'}), one = add(row, 'div');
  chart(one, 'roofline', s);
  const left = d.kernels.length - ks.length;
  legend(one, Object.entries(COLORS).map(([k, c]) => [c, k + (k.startsWith('matrix') ? ' ●' : ' ▲')]));
  if (left) add(one, 'p', {class: 'note'}, `${left} kernels with no FLOPs or no bytes are not drawn.`);
  stageBars(add(row, 'div'), d);
  topKernels(sec, d);
}

function topKernels(sec, d) {  // where the time goes: the slowest kernels, as `effplan roofline --sort time_s --top`
  const k = d.top_kept, byName = new Map(d.kernels.map(r => [r.name, r]));
  add(sec, 'h3', {}, esc(`Top kernels: the ${d.top_kernels.length} of ${k.of} with the most time, ${F.pct(k.share)} of the latency`));
  const cols = [['name', 'name', F.text, 1], ['op', 'op', F.text, 1], ['stage', 'stage', F.text, 1], ['unit', 'unit', F.text, 1],
                ['bound', 'bound', F.text, 1], ['macs', 'MACs', F.int], ['bytes', 'MB moved', v => (v / 1e6).toFixed(3)],
                ['time_s', 'time µs', F.us], ['share', 'share', F.pct]];
  table(sec, cols, d.top_kernels.map(n => byName.get(n)), null, {cls: 'top'});
}

function fitAndTraining() {  // per device: the largest batch that fits, and (with --train) how long a run takes
  const ds = D.devices.filter(d => d.fit || d.training);
  if (!ds.length) return;
  const sec = add(app, 'section', {id: 'fit'});
  const train = ds.some(d => d.training);
  add(sec, 'h2', {}, train ? 'What fits, and how long training takes' : 'What fits');
  const f0 = ds.find(d => d.fit);
  if (f0) add(sec, 'p', {class: 'note'}, esc(`Largest batch within each device's memory less a ${f0.fit.reserve} reserve for the runtime's context, workspace and fragmentation (effplan fit --device).`
    + (train ? ' Training: effplan train on one device at the largest batch that fits, for the authors\' recipe where the spec records one (else one epoch).' : '')));
  let head = '<tr><th class="t">device</th><th>memory</th><th>inference batch</th>' + (train ? '<th>training batch</th><th>step ms</th><th>images/s</th><th>epoch min</th><th>run</th>' : '') + '</tr>';
  let body = '';
  for (const d of ds) {
    const f = d.fit, t = d.training;
    body += `<tr><td class="t">${esc(d.device)}</td><td>${f ? esc((f.capacity_bytes / 2 ** 30).toFixed(2) + ' GiB') : '-'}</td><td>${f ? esc(`${f.inference.batch} (${f.inference.dtype})`) : '-'}</td>`;
    if (train) {
      body += `<td>${f && f.training ? esc(`${f.training.batch} (${f.training.precision}, ${f.training.optimizer})`) : '-'}</td>`;
      body += t && !t.error ? `<td>${esc((t.step_s * 1e3).toFixed(2))}</td><td>${esc(F.int(Math.round(t.images_per_s)))}</td><td>${esc((t.epoch_s / 60).toFixed(1))}</td><td class="t" data-tip="${esc(t.recipe || 'no recipe recorded: one epoch')}">${esc(`${t.hours.toFixed(2)} h, ${t.epochs} epochs`)}</td>`
        : `<td colspan="4" class="t">${esc(t ? t.error : '-')}</td>`;
    }
    body += '</tr>';
  }
  add(add(sec, 'div', {class: 'scroll'}), 'table', {class: 'fit'}, `<thead>${head}</thead><tbody>${body}</tbody>`);
}

function stageBars(sec, d) {
  add(sec, 'h3', {}, 'Time per stage, by bound');
  const rows = d.stage_bound, rowH = 22, hgt = M.t + rows.length * rowH + 36, W = 460;
  const most = Math.max(...rows.map(r => r.compute + r.memory + r.host));
  const x = scale(0, most * 1.05, 60, W - M.r, false);
  let s = '';
  for (const v of x.ticks()) s += `<line class="grid" x1="${x(v)}" x2="${x(v)}" y1="${M.t}" y2="${hgt - 30}"/><text x="${x(v)}" y="${hgt - 16}" text-anchor="middle">${F.g(v * 1e6)}</text>`;
  s += `<text x="${(60 + W) / 2}" y="${hgt - 2}" text-anchor="middle">time, µs (stage total = sum of its kernels)</text>`;
  rows.forEach((r, i) => {
    const yy = M.t + i * rowH; let at = 0;
    s += `<text x="54" y="${yy + 15}" text-anchor="end">${esc(r.stage)}</text>`;
    for (const b of BOUNDS) {
      if (r[b] > 0) s += `<rect class="mark" x="${x(at)}" y="${yy + 3}" width="${Math.max(x(at + r[b]) - x(at), 0.5)}" height="${rowH - 6}" fill="${{compute: '#1f77b4', memory: '#d62728', host: '#7f7f7f'}[b]}" data-tip="${esc(`${r.stage}: ${b}-bound kernels ${F.us(r[b])} µs`)}"/>`;
      at += r[b];
    }
  });
  chart(sec, 'stages', s, W, hgt);
  legend(sec, [['#1f77b4', 'compute-bound'], ['#d62728', 'memory-bound'], ['#7f7f7f', 'host-bound']]);
}

function memoryCharts() {
  const m = D.memory, rows = m.layers, sec = add(app, 'section', {id: 'memory'});
  add(sec, 'h2', {}, 'Memory over the schedule');
  add(sec, 'p', {class: 'note'}, esc(`Live activation bytes while each op runs, in the builder's run order (${rows.length} ops, batch ${m.batch}, ${m.dtype}); weights ${F.MiB(m.weight_bytes)} sit beside them. `
    + Object.values(m.assumptions).join('; ')));
  const n = rows.length, top = Math.max(...rows.map(r => r.live_bytes));
  const x = scale(0, n, M.l, W - M.r, false), ym = scale(0, top * 1.1 / 2 ** 20, H - M.b, M.t, false), y = v => ym(v / 2 ** 20);
  let s = frame(x, ym, 'op, in run order', 'live activations, MiB', v => F.g(v), v => F.g(v));
  const bw = Math.max(x(1) - x(0), 0.3);
  let peak = 0;
  rows.forEach((r, i) => { if (r.live_bytes > rows[peak].live_bytes) peak = i; });
  rows.forEach((r, i) => {
    s += `<rect class="mark${i === peak ? ' peak' : ''}" x="${x(i)}" y="${y(r.live_bytes)}" width="${bw}" height="${y(0) - y(r.live_bytes)}" fill="${i === peak ? '#d62728' : '#6baed6'}" data-tip="${esc(`${r.name} (${r.op}, stage ${r.stage})\nlive ${F.MiB(r.live_bytes)}`)}"/>`;
  });
  const p = rows[peak];
  s += `<text x="${Math.min(x(peak) + 6, W - 200)}" y="${y(p.live_bytes) - 4}" fill="#d62728">peak ${esc(F.MiB(m.plain_order_peak_bytes))} at ${esc(p.name)}</text>`;
  chart(sec, 'memory', s);
  add(sec, 'p', {}, `Live at the peak (${esc(m.peak_layer || 'input')}, ${esc(F.MiB(m.inference_peak_bytes))}; + weights = ${esc(F.MiB(m.inference_total_bytes))}): `
    + m.peak_live_tensors.map(t => `${esc(t.name)} ${esc(F.MiB(t.bytes))}`).join(', '));
  if (m.training) training(sec, m, rows);
}

function training(sec, m, rows) {
  const t = m.training;
  add(sec, 'h3', {}, 'A training step');
  add(sec, 'p', {class: 'note'}, esc(`${t.precision} precision, ${t.optimizer}, checkpoint ${t.checkpoint}: ${F.MiB(t.total_bytes)} = saved activations ${F.MiB(t.activation_bytes)} + weights ${F.MiB(t.weight_bytes)} + gradients ${F.MiB(t.gradient_bytes)} + optimizer ${F.MiB(t.optimizer_bytes)} + transient ${F.MiB(t.transient_bytes)}. The curve: activations saved for backward as the forward pass runs (each on the op that made it), then released in reverse through the backward pass` + (t.checkpoint !== 'none' ? ' (before checkpointing)' : ''))
    + extras(t, ['total_bytes', 'activation_bytes', 'weight_bytes', 'gradient_bytes', 'optimizer_bytes', 'transient_bytes', 'precision', 'optimizer', 'checkpoint', 'activation_bytes_without_checkpoint', 'checkpoint_saved_bytes', 'recompute_flops']).map(([k, v]) => `<br>${esc(k)} ${esc(v)}`).join(''));
  const n = rows.length, pts = [0];
  for (const r of rows) pts.push(pts[pts.length - 1] + (r.saved_bytes || 0));
  const all = pts[n];
  for (let i = n - 1; i >= 0; i--) pts.push(pts[pts.length - 1] - (rows[i].saved_bytes || 0));
  const x = scale(0, 2 * n, M.l, W - M.r, false), ym = scale(0, (all * 1.1 || 1) / 2 ** 20, H - M.b, M.t, false), y = v => ym(v / 2 ** 20);
  let s = frame(x, ym, 'forward ops, then backward ops (op index from the input)', 'saved activations, MiB', v => v <= n ? F.g(v) : F.g(2 * n - v), v => F.g(v));
  s += `<path class="saved" d="M${pts.map((v, i) => `${x(i)},${y(v)}`).join('L')}" fill="#fdd0a2" stroke="#e6550d"/>`;
  s += `<line x1="${x(n)}" x2="${x(n)}" y1="${M.t}" y2="${H - M.b}" stroke="#999" stroke-dasharray="4 3"/>`;
  s += `<text x="${x(n) + 4}" y="${y(all) - 4}" fill="#e6550d">${esc(F.MiB(t.activation_bytes_without_checkpoint))} saved at the end of the forward pass</text>`;
  chart(sec, 'training', s);
}

function modelPage() {
  const o = D.options;
  title(esc(`batch ${o.batch}; ${o.dtype} (${o.dtype_origin})`));
  summary();
  layerTable();
  for (const d of D.devices) roofline(d);
  fitAndTraining();
  memoryCharts();
}

function comparePage() {
  title();
  const sec = add(app, 'section', {id: 'compare'});
  add(sec, 'h2', {}, 'Side by side');
  const head = '<tr><th class="t">metric</th>' + D.rows.map(r => `<th>${esc(r.model)}${nd(r.phi) || !D.compound ? '' : ' φ' + F.g(r.phi)}</th>`).join('') + '</tr>';
  let body = D.metrics.map(([hd, k]) => `<tr><td class="t">${esc(hd)}</td>` + D.text.map(t => `<td>${esc(t[k] || '-')}</td>`).join('') + '</tr>').join('');
  for (const d of D.devices) body += `<tr><td class="t">latency ms, ${esc(d.device)} ${esc(d.dtype)}${d.runtime ? ', ' + esc(d.runtime) : ''}</td>` + d.text.map(t => `<td>${esc(t.latency_s)}</td>`).join('') + '</tr>'
    + `<tr><td class="t">images/s, ${esc(d.device)}</td>` + d.text.map(t => `<td>${esc(t.images_per_s)}</td>`).join('') + '</tr>';
  add(add(sec, 'div', {class: 'scroll'}), 'table', {class: 'compare'}, `<thead>${head}</thead><tbody>${body}</tbody>`);
  compareBars();
  scaling();
}

function compareBars() {  // each figure as bars, one per design, scaled to the largest design's (its text in the tip)
  const figures = [['macs', 'MACs'], ['params', 'params'], ['inference_bytes', 'inference memory'], ['training_bytes', 'training memory']]
    .map(([k, label]) => ({label, values: D.rows.map(r => r[k]), text: D.text.map(t => t[k])}))
    .concat(D.devices.map(d => ({label: `latency on ${d.device} (${d.dtype})`, values: d.rows.map(r => r.latency_s), text: d.text.map(t => t.latency_s + ' ms')})))
    .filter(f => f.values.every(v => !nd(v)));
  const sec = add(app, 'section', {id: 'bars'});
  add(sec, 'h2', {}, 'Side by side, as bars');
  add(sec, 'p', {class: 'note'}, 'Each figure against the largest design\'s (the longest bar); hover a bar for its value.');
  const n = D.rows.length, barH = 12, groupH = n * barH + 22, hgt = M.t + figures.length * groupH + 10, left = 230;
  const x = scale(0, 1, left, W - M.r, false);
  const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
  let s = '';
  figures.forEach((f, fi) => {
    const top = Math.max(...f.values), y0 = M.t + fi * groupH;
    s += `<text x="${left - 6}" y="${y0 + 12}" text-anchor="end" font-weight="bold">${esc(f.label)}</text>`;
    f.values.forEach((v, i) => {
      const yy = y0 + 16 + i * barH, name = D.rows[i].model + (nd(D.rows[i].phi) || !D.compound ? '' : ` φ${F.g(D.rows[i].phi)}`);
      s += `<text x="${left - 6}" y="${yy + 9}" text-anchor="end">${esc(name)}</text>`;
      s += `<rect class="mark" x="${left}" y="${yy}" width="${Math.max(x(top ? v / top : 0) - left, 0.5)}" height="${barH - 2}" fill="${palette[i % palette.length]}" data-tip="${esc(`${name}\n${f.label}: ${f.text[i]}`)}"/>`;
    });
  });
  chart(sec, 'bars', s, W, hgt);
}

function scaling() {
  // one series per model and way of scaling; a figure relative to the series' smallest φ, beside 2^φ
  const series = {};
  D.rows.forEach((r, i) => { if (!nd(r.phi)) (series[r.coefficients === 'published' ? 'published ' + r.model.replace(/-?[a-z]?\d+$/, '') : r.model + ' (' + r.coefficients + ')'] ||= []).push(i); });
  const keep = Object.entries(series).filter(([, is]) => new Set(is.map(i => D.rows[i].phi)).size > 1);
  if (!keep.length) return;
  const sec = add(app, 'section', {id: 'scaling'});
  add(sec, 'h2', {}, 'Scaling against φ');
  const figures = [['macs', 'MACs'], ['params', 'params'], ['inference_bytes', 'inference memory'], ['training_bytes', 'training memory']]
    .concat(D.devices.map((d, j) => ['latency:' + j, 'latency on ' + d.device]));
  add(sec, 'p', {class: 'note'}, 'Each figure divided by its value at the smallest φ of the series (log scale), beside the 2^φ the paper promises (dashed).');
  const value = (i, key) => key.startsWith('latency:') ? D.devices[+key.slice(8)].rows[i].latency_s : D.rows[i][key];
  const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];
  const lines = [];
  let lo = 1, hi = 1, plo = Infinity, phiHi = -Infinity;
  for (const [name, is] of keep) {
    const sorted = is.slice().sort((a, b) => D.rows[a].phi - D.rows[b].phi), first = sorted[0];
    figures.forEach(([key, label], fi) => {
      if (sorted.some(i => nd(value(i, key)))) return;
      const pts = sorted.map(i => [D.rows[i].phi, value(i, key) / value(first, key), i]);
      pts.forEach(p => { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); plo = Math.min(plo, p[0]); phiHi = Math.max(phiHi, p[0]); });
      lines.push({name, label, pts, color: palette[fi % palette.length], base: D.rows[first].phi});
    });
    const b = D.rows[sorted[0]].phi; hi = Math.max(hi, 2 ** (phiHi - b));
  }
  const x = scale(plo, phiHi, M.l, W - M.r, false), y = scale(lo / 1.2, hi * 1.2, H - M.b, M.t, true);
  let s = frame(x, y, 'φ', '× the smallest φ', v => F.g(v), v => F.g(v));
  const bases = [...new Set(lines.map(l => l.base))];
  for (const b of bases) { const ps = []; for (let p = b; p <= phiHi + 1e-9; p += (phiHi - b) / 40 || 1) ps.push(`${x(p)},${y(2 ** (p - b))}`); s += `<path d="M${ps.join('L')}" fill="none" stroke="#000" stroke-dasharray="5 4"><title>2^φ</title></path>`; }
  lines.forEach((l, li) => {
    const dash = keep.findIndex(k => k[0] === l.name) ? '2 2' : '';
    s += `<path d="M${l.pts.map(p => `${x(p[0])},${y(p[1])}`).join('L')}" fill="none" stroke="${l.color}" stroke-dasharray="${dash}"/>`;
    for (const p of l.pts) s += `<circle class="mark" cx="${x(p[0])}" cy="${y(p[1])}" r="3.5" fill="${l.color}" data-tip="${esc(`${l.name}: ${D.rows[p[2]].model} φ ${F.g(p[0])}\n${l.label} ×${p[1].toFixed(2)}`)}"/>`;
  });
  chart(sec, 'scaling', s);
  legend(sec, [...new Map(lines.map(l => [l.label, l.color]))].map(([t, c]) => [c, t]).concat([['#000', '2^φ']]));
  if (keep.length > 1) add(sec, 'p', {class: 'note'}, esc('series: ' + keep.map((k, i) => k[0] + (i ? ' (dotted)' : ' (solid)')).join(', ')));
}

function checkPage() {
  const r = D.report;
  title(`<span class="${r.passed ? 'pass' : 'fail'}">${r.passed ? 'pass' : 'FAIL'}</span>: ${r.checks.filter(c => c.passed).length} of ${r.checks.length} limits pass` + (r.growth.length ? `; ${r.growth.length} figures grew against ${esc(r.baseline)}` : ''));
  const sec = add(app, 'section', {id: 'checks'});
  add(sec, 'h2', {}, 'Limits');
  const rows = r.checks.map((c, i) => ({...c, ...Object.fromEntries(Object.entries(D.text[i]).map(([k, v]) => [k + '_text_', v]))}));
  const cols = D.columns.map(([hd, k]) => [k, hd, (v, row) => row[k + '_text_'], ['budget', 'model', 'limit_key', 'scope', 'value_text', 'limit_text'].includes(k) ? 1 : 0]);
  table(sec, cols, rows, null, {cls: 'checks'});
  // margins as bars: the share of each limit left (negative: over)
  const n = rows.length, rowH = 22, hgt = M.t + n * rowH + 36, most = Math.max(1e-9, ...rows.map(c => Math.abs(c.margin)));
  const x = scale(-most, most, 260, W - M.r, false);
  let s = `<line class="ax" x1="${x(0)}" x2="${x(0)}" y1="${M.t}" y2="${hgt - 30}"/>`;
  rows.forEach((c, i) => {
    const yy = M.t + i * rowH, a = Math.min(x(0), x(c.margin));
    s += `<text x="254" y="${yy + 15}" text-anchor="end">${esc(`${c.budget} ${c.limit_key}`)}</text>`;
    s += `<rect class="mark" x="${a}" y="${yy + 3}" width="${Math.max(Math.abs(x(c.margin) - x(0)), 1)}" height="${rowH - 6}" fill="${c.passed ? '#2ca02c' : '#d62728'}" data-tip="${esc(`${c.budget}: ${c.model}\n${c.limit_key}: ${c.value_text} against ${c.limit_text}\nmargin ${D.text[i].margin} (${c.passed ? 'pass' : 'FAIL'})`)}"/>`;
  });
  s += `<text x="${(260 + W) / 2}" y="${hgt - 8}" text-anchor="middle">margin: share of the limit left (right: room; left: over)</text>`;
  add(sec, 'h3', {}, 'Margins');
  chart(sec, 'margins', s, W, hgt);
  if (r.growth.length) add(sec, 'ul', {}, r.growth.map(g => `<li class="fail">${esc(g.figure)} grew ${g.growth === null ? 'from 0' : (g.growth * 100).toFixed(2) + '%'} (${F.int(g.baseline)} → ${F.int(g.current)}): ${esc(g.layers.slice(0, 8).join(', '))}</li>`).join(''));
  const unknown = Object.entries(r.unknown_ops || {});
  if (unknown.length) add(sec, 'p', {class: r.strict ? 'fail' : 'note'}, esc('no cost function (counted as zero): ' + unknown.map(([b, ops]) => `${b}: ${Object.keys(ops).join(', ')}`).join('; ')));
}

function searchPage() {
  const lim = D.limits.map(l => `${l.key} ${l.text}`).join(', ');
  title(esc(`${lim} | batch ${D.batch}, ${D.dtype}${D.device ? ' on ' + D.device : ''} | objective ${D.objective} | ${D.stats.evaluated.toLocaleString('en-US')} grid designs evaluated, ${D.stats.screened_in.toLocaleString('en-US')} within every limit`));
  const sec = add(app, 'section', {id: 'pareto'});
  add(sec, 'h2', {}, 'MACs against inference memory');
  const fit = D.fitting, ds = D.designs, fr = D.front;
  const xs = (fit.inference_bytes || []).concat(ds.map(d => d.inference_bytes), fr.map(d => d.inference_bytes));
  const ys = (fit.macs || []).concat(ds.map(d => d.macs), fr.map(d => d.macs));
  const lx = D.limits.filter(l => l.figure === 'inference_bytes'), ly = D.limits.filter(l => l.figure === 'macs');
  const xr = [Math.min(...xs), Math.max(...xs, ...lx.map(l => l.value))], yr = [Math.min(...ys), Math.max(...ys, ...ly.map(l => l.value))];
  const xm = scale(xr[0] * 0.95 / 2 ** 20, xr[1] * 1.05 / 2 ** 20, M.l, W - M.r, false), ym = scale(yr[0] * 0.95 / 1e9, yr[1] * 1.05 / 1e9, H - M.b, M.t, false);
  const x = v => xm(v / 2 ** 20), y = v => ym(v / 1e9);
  let s = frame(xm, ym, 'inference memory (weights + peak activations), MiB', 'MACs, G', F.g, F.g);
  (fit.macs || []).forEach((m, i) => { s += `<circle cx="${x(fit.inference_bytes[i])}" cy="${y(m)}" r="1.5" fill="#c7c7c7"/>`; });
  const sorted = fr.slice().sort((a, b) => a.inference_bytes - b.inference_bytes);
  s += `<path d="M${sorted.map(d => `${x(d.inference_bytes)},${y(d.macs)}`).join('L')}" fill="none" stroke="#ff7f0e"/>`;
  for (const d of fr) s += `<circle class="front" cx="${x(d.inference_bytes)}" cy="${y(d.macs)}" r="3" fill="#ff7f0e" data-tip="${esc(`Pareto front: d ${F.g(d.depth_mult)}, w ${F.g(d.width_mult)}, ${d.resolution}px\nMACs ${si(d.macs)}, ${F.MiB(d.inference_bytes)}`)}"/>`;
  ds.forEach((d, i) => { s += `<rect class="mark" x="${x(d.inference_bytes) - 4.5}" y="${y(d.macs) - 4.5}" width="9" height="9" fill="${d.pareto ? '#1f77b4' : '#9ecae1'}" stroke="#000" data-tip="${esc(`#${i + 1} (${d.search}) φ ${nd(d.phi) ? '-' : F.g(d.phi)}, d ${D.text[i].depth_mult}, w ${D.text[i].width_mult}, ${d.resolution}px\nMACs ${D.text[i].macs}, ${D.text[i].inference_bytes} MiB, score ${D.text[i].score}`)}"/>`; });
  for (const l of lx) s += `<line x1="${x(l.value)}" x2="${x(l.value)}" y1="${M.t}" y2="${H - M.b}" stroke="#000" stroke-dasharray="6 3"/><text x="${x(l.value) - 4}" y="${M.t + 12}" text-anchor="end">${esc(l.key + ' ' + l.text)}</text>`;
  for (const l of ly) s += `<line x1="${M.l}" x2="${W - M.r}" y1="${y(l.value)}" y2="${y(l.value)}" stroke="#000" stroke-dasharray="2 3"/><text x="${M.l + 4}" y="${y(l.value) - 4}">${esc(l.key + ' ' + l.text)}</text>`;
  chart(sec, 'pareto', s);
  legend(sec, [['#c7c7c7', `grid designs within the limits (${(fit.macs || []).length})`], ['#ff7f0e', `Pareto front (${fr.length})`], ['#1f77b4', 'designs found, on the front'], ['#9ecae1', 'designs found, off it']]);
  const other = D.limits.filter(l => !['macs', 'inference_bytes'].includes(l.figure));
  if (other.length) add(sec, 'p', {class: 'note'}, esc('limits on other figures (not on these axes): ' + other.map(l => `${l.key} ${l.text}`).join(', ')));
  add(sec, 'h2', {}, 'Designs found, best first');
  const rows = ds.map((d, i) => ({...d, rank: i + 1, ...Object.fromEntries(Object.entries(D.text[i]).map(([k, v]) => [k + '_text_', v]))}));
  const cols = [['rank', '#', v => String(v)]].concat(D.columns.map(([hd, k]) => [k, hd, (v, row) => row[k + '_text_'], k === 'search' ? 1 : 0]), [['pareto', 'pareto', v => v ? 'yes' : '', 1]]);
  table(sec, cols, rows, null, {cls: 'designs'});
}

({model: modelPage, compare: comparePage, check: checkPage, search: searchPage})[D.kind]();
document.body.dataset.rendered = '1';
