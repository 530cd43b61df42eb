/*
 * Strangler's migration dashboard: polls the admin API every two seconds
 * and shows how far the migration has come, the routes (with a flip
 * control each), the method inventory and the event pipeline.
 *
 * Rules this file keeps:
 * - Text from the API reaches the page through textContent, attributes
 *   through dataset/setAttribute: never innerHTML, never eval. The admin API
 *   serves the page under CSP default-src 'self', which would refuse inline
 *   code anyway.
 * - The token lives in sessionStorage (this tab only) and travels in the
 *   Authorization header, never in a URL. With no token configured the API
 *   answers without one and the form never shows.
 * - Every endpoint may be missing (an older proxy has no GET /methods): its
 *   panel says "not available" and the rest still works.
 */
'use strict';

(function () {
  const POLL_MS = 2000;
  const REQUEST_TIMEOUT_MS = 5000;
  // Two missed polls and a margin: data older than this is marked stale.
  const STALE_MS = 2 * POLL_MS + 1500;
  const TOKEN_KEY = 'strangler.admin-token';
  // Rows drawn at most: a proxy tracks up to 10,000 methods, and a table
  // that long helps nobody; the filter finds the rest.
  const MAX_METHOD_ROWS = 500;

  const state = {
    token: readToken(),
    authFailed: false,
    pollSeq: 0,
    timer: null,
    lastOkAt: 0,        // Date.now() of the last complete answer
    lastError: null,    // why the last poll failed, or null
    prev: null,         // the previous poll's counters, for rates
    routeRows: new Map(),
    routes: null,
    methods: null,      // the last GET /methods answer, or null
    methodRates: { prev: null, dt: 0 },
  };

  const fmtInt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

  function $(id) {
    return document.getElementById(id);
  }

  /* Makes an element with a class and text; text goes in as text. */
  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function setText(id, text) {
    const e = typeof id === 'string' ? $(id) : id;
    if (e) e.textContent = text === undefined || text === null ? '—' : String(text);
  }

  function readToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch (e) {
      return '';
    }
  }

  function storeToken(token) {
    state.token = token;
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) {
      // Storage refused (private mode): the token lives as long as the page.
    }
  }

  /* ---- formatting ---- */

  function isNum(v) {
    return typeof v === 'number' && Number.isFinite(v);
  }

  function count(v) {
    return isNum(v) ? fmtInt.format(v) : '—';
  }

  function percent(fraction, digits) {
    if (!isNum(fraction)) return '—';
    const p = fraction * 100;
    const d = digits !== undefined ? digits : (p > 0 && p < 10 ? 2 : 1);
    return p.toFixed(d) + ' %';
  }

  function rate(v) {
    if (!isNum(v)) return '';
    if (v === 0) return '0/s';
    if (v < 0.1) return '<0.1/s';
    return (v < 10 ? v.toFixed(1) : fmtInt.format(v)) + '/s';
  }

  function millis(v) {
    if (!isNum(v)) return '—';
    if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 2) + ' s';
    if (v >= 100) return v.toFixed(0) + ' ms';
    if (v >= 10) return v.toFixed(1) + ' ms';
    return v.toFixed(2) + ' ms';
  }

  function bytes(v) {
    if (!isNum(v)) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : 1)) + ' ' + units[i];
  }

  function duration(seconds) {
    if (!isNum(seconds) || seconds < 0) return '—';
    const s = Math.floor(seconds);
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }

  function ago(seconds) {
    if (!isNum(seconds)) return '—';
    if (seconds < 1) return 'just now';
    if (seconds < 60) return Math.floor(seconds) + ' s ago';
    if (seconds < 3600) return Math.floor(seconds / 60) + ' min ago';
    if (seconds < 86400) return Math.floor(seconds / 3600) + ' h ago';
    return Math.floor(seconds / 86400) + ' d ago';
  }

  function clock(date) {
    return date.toLocaleTimeString('en-GB', { hour12: false });
  }

  function parseTime(text) {
    if (typeof text !== 'string') return null;
    const t = Date.parse(text);
    return Number.isNaN(t) ? null : t;
  }

  /* ---- the admin API ---- */

  /* One request; resolves to {status, json, text}, rejects when there is no
   * answer at all (network error, timeout). */
  async function api(method, path, body) {
    const headers = { Accept: 'application/json, text/plain' };
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), REQUEST_TIMEOUT_MS);
    init.signal = ctl.signal;
    try {
      const res = await fetch(path, init);
      const text = await res.text();
      let json = null;
      if ((res.headers.get('Content-Type') || '').includes('json')) {
        try {
          json = JSON.parse(text);
        } catch (e) {
          json = null;
        }
      }
      return { status: res.status, json, text };
    } catch (e) {
      throw new Error(e && e.name === 'AbortError' ? 'no answer within ' +
        REQUEST_TIMEOUT_MS / 1000 + ' s' : 'cannot reach the admin API');
    } finally {
      clearTimeout(timer);
    }
  }

  /* The FILE:LINE messages of a refusal that say what is wrong. The checker
   * also reports warnings about lines nobody touched; they are left out
   * unless nothing else is there. */
  function details(res) {
    const j = res.json;
    if (!j || !Array.isArray(j.messages)) return [];
    const all = j.messages.filter((m) => typeof m === 'string');
    const errors = all.filter((m) => !/: warning: /.test(m));
    return errors.length > 0 ? errors : all;
  }

  /* The reason an API answer gives for a refusal, on one line. */
  function reason(res) {
    const j = res.json;
    let msg = j && typeof j.error === 'string' ? j.error : '';
    const more = details(res);
    if (more.length > 0) msg = (msg ? msg + ': ' : '') + more.join('; ');
    if (!msg) msg = (res.text || '').trim().slice(0, 200) || 'HTTP ' + res.status;
    return msg;
  }

  /* ---- Prometheus text format 0.0.4 ---- */

  function parseLabels(text) {
    const labels = {};
    const re = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/y;
    let m;
    while (re.lastIndex < text.length && (m = re.exec(text)) !== null) {
      labels[m[1]] = m[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    return labels;
  }

  function parseValue(text) {
    if (text === '+Inf') return Infinity;
    if (text === '-Inf') return -Infinity;
    return Number(text);
  }

  /* Samples as [{name, labels, value}]; comments and odd lines skipped. */
  function parseMetrics(text) {
    const samples = [];
    const line = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
    for (const raw of text.split('\n')) {
      if (raw === '' || raw[0] === '#') continue;
      const m = line.exec(raw);
      if (!m) continue;
      samples.push({ name: m[1], labels: m[2] ? parseLabels(m[2]) : {}, value: parseValue(m[3]) });
    }
    return samples;
  }

  /* The sum of a family's samples whose labels match `where`, or null when
   * the family has none (missing is not zero). */
  function metric(samples, name, where) {
    if (!samples) return null;
    let sum = null;
    for (const s of samples) {
      if (s.name !== name) continue;
      if (where && !Object.keys(where).every((k) => s.labels[k] === where[k])) continue;
      sum = (sum || 0) + s.value;
    }
    return sum;
  }

  function metricLabel(samples, name, label) {
    if (!samples) return null;
    const s = samples.find((x) => x.name === name && typeof x.labels[label] === 'string');
    return s ? s.labels[label] : null;
  }

  /* ---- status line ---- */

  function setStatus(stateName, text) {
    const s = $('status');
    s.dataset.state = stateName;
    s.textContent = text;
  }

  function refreshStatus() {
    if (state.authFailed) return;
    const data = $('data');
    if (!state.lastOkAt) {
      if (state.lastError) setStatus('down', 'unreachable: ' + state.lastError);
      return;
    }
    const age = (Date.now() - state.lastOkAt) / 1000;
    const when = clock(new Date(state.lastOkAt));
    if (state.lastError) {
      setStatus('down', 'unreachable (' + state.lastError + ') · data from ' + when + ', ' + ago(age));
      data.classList.add('stale');
    } else if (age * 1000 > STALE_MS) {
      setStatus('stale', 'stale · last update ' + when + ', ' + ago(age));
      data.classList.add('stale');
    } else {
      setStatus('live', 'live · updated ' + when);
      data.classList.remove('stale');
    }
  }

  /* ---- token ---- */

  /* Shows the form and forgets every figure: without a valid token the
   * page shows no data at all. */
  function askForToken(message) {
    state.authFailed = true;
    clearTimeout(state.timer);
    $('data').hidden = true;
    clearData();
    $('token-panel').hidden = false;
    $('token-forget').hidden = true;
    const err = $('token-error');
    err.hidden = !message;
    err.textContent = message || '';
    setStatus('auth', 'token required');
    const input = $('token');
    if (document.activeElement !== input) input.focus();
  }

  function clearData() {
    $('routes-body').replaceChildren();
    $('methods-body').replaceChildren();
    state.routeRows.clear();
    state.routes = null;
    state.methods = null;
    state.prev = null;
    state.lastOkAt = 0;
    setText('new-share', '—');
    $('new-share').dataset.share = '';
  }

  function onTokenSubmit(ev) {
    ev.preventDefault();
    const input = $('token');
    const token = input.value.trim();
    if (!token) return;
    storeToken(token);
    input.value = '';
    state.authFailed = false;
    $('token-panel').hidden = true;
    setStatus('wait', 'checking the token…');
    poll();
  }

  function onTokenForget() {
    storeToken('');
    askForToken('');
  }

  /* ---- share of traffic ---- */

  /* Calls answered by each side since the counting started: from GET
   * /methods if the proxy has it, else from strangler_requests_total. */
  function sideTotals(methods, samples) {
    if (methods && methods.totals && isNum(methods.totals.calls)) {
      const t = methods.totals;
      const fresh = isNum(t.new_calls) ? t.new_calls : 0;
      const legacy = isNum(t.legacy_calls) ? t.legacy_calls : 0;
      const answered = fresh + legacy;
      return {
        source: 'methods',
        fresh,
        legacy,
        calls: t.calls,
        // No call answered yet is no share at all, not 0 %.
        share: answered === 0 ? null : isNum(t.new_share) ? t.new_share : fresh / answered,
      };
    }
    const fresh = metric(samples, 'strangler_requests_total', { side: 'new' });
    const legacy = metric(samples, 'strangler_requests_total', { side: 'legacy' });
    const gauge = metric(samples, 'strangler_new_service_share');
    if (fresh === null && legacy === null && gauge === null) return null;
    const answered = (fresh || 0) + (legacy || 0);
    return {
      source: 'metrics',
      fresh: fresh || 0,
      legacy: legacy || 0,
      calls: metric(samples, 'strangler_requests_total'),
      share: answered > 0 ? (fresh || 0) / answered : fresh === null && legacy === null ? gauge : null,
    };
  }

  function renderShare(totals, prev, dt) {
    const big = $('new-share');
    const bar = $('share-bar');
    big.classList.toggle('none', !totals || !isNum(totals.share));
    if (!totals) {
      big.textContent = 'n/a';
      big.dataset.share = '';
      bar.style.width = '0';
      setText('share-detail', 'not available: this proxy reports neither GET /methods nor strangler_requests_total');
      setText('share-recent', '—');
      setText('share-recent-detail', '');
      setText('call-rate', '—');
      setText('call-rate-detail', '');
      return;
    }
    const share = totals.share;
    big.textContent = isNum(share) ? percent(share, 1) : 'no calls yet';
    big.dataset.share = isNum(share) ? String(share) : '';
    big.dataset.newCalls = String(totals.fresh);
    big.dataset.legacyCalls = String(totals.legacy);
    bar.style.width = isNum(share) ? Math.max(0, Math.min(100, share * 100)) + '%' : '0';
    let detail = count(totals.fresh) + ' calls answered by new services, ' +
      count(totals.legacy) + ' by the legacy';
    if (isNum(totals.calls)) detail += ', of ' + count(totals.calls) + ' calls';
    const since = state.methods && parseTime(state.methods.since);
    if (since) detail += ' since ' + new Date(since).toLocaleString('en-GB', { hour12: false });
    setText('share-detail', detail);

    // What the last interval did: a flip shows here at once, long before
    // it moves the figure since the start.
    const before = prev && prev.totals && prev.totals.source === totals.source ? prev.totals : null;
    if (before && dt > 0) {
      const dNew = totals.fresh - before.fresh;
      const dLegacy = totals.legacy - before.legacy;
      if (dNew < 0 || dLegacy < 0) {
        setText('share-recent', '—');
        setText('share-recent-detail', 'counters restarted');
      } else if (dNew + dLegacy === 0) {
        setText('share-recent', '—');
        setText('share-recent-detail', 'no calls in the last ' + dt.toFixed(0) + ' s');
      } else {
        setText('share-recent', percent(dNew / (dNew + dLegacy), 1));
        setText('share-recent-detail', count(dNew) + ' new · ' + count(dLegacy) + ' legacy in ' +
          dt.toFixed(1) + ' s');
      }
      const dCalls = isNum(totals.calls) && isNum(before.calls) ? totals.calls - before.calls : null;
      if (dCalls !== null && dCalls >= 0) {
        setText('call-rate', rate(dCalls / dt) || '0/s');
        setText('call-rate-detail', 'through the proxy');
      }
    } else {
      setText('share-recent', '—');
      setText('share-recent-detail', 'after the next update');
      setText('call-rate', '—');
      setText('call-rate-detail', '');
    }
  }

  /* ---- routes ---- */

  /* Who serves a route's calls now. The proxy says so ("side"); an older
   * one does not, and then the rule of the contract decides: kind=json
   * upstreams are the new side. */
  function routeSide(r) {
    if (typeof r.side === 'string') return r.side;
    if (r.mode === 'canary') return 'canary';
    if (r.mode === 'shadow' || r.mode === 'fallback') return 'legacy';
    return r.kind === 'json' ? 'new' : 'legacy';
  }

  function sidePill(side) {
    const s = typeof side === 'string' && side ? side : 'none';
    const pill = el('span', 'pill side-' + (['new', 'legacy', 'canary'].includes(s) ? s : 'none'), s);
    pill.dataset.side = s;
    return pill;
  }

  function makeRouteRow(name) {
    const tr = el('tr');
    tr.dataset.route = name;
    const cells = {};
    for (const col of ['name', 'match', 'action', 'mode', 'side', 'upstream', 'requests', 'faults',
                       'errors', 'events', 'dark', 'flip']) {
      const td = el('td', ['requests', 'faults', 'errors', 'events'].includes(col) ? 'num' : '');
      td.dataset.col = col;
      cells[col] = td;
      tr.appendChild(td);
    }
    cells.name.appendChild(el('span', 'route-name', name));

    const form = el('form', 'flip');
    form.noValidate = true;
    const input = el('input');
    input.type = 'text';
    input.spellcheck = false;
    input.autocomplete = 'off';
    input.dataset.flip = name;
    input.setAttribute('aria-label', 'New action for route ' + name);
    const button = el('button', '', 'Flip');
    button.type = 'submit';
    button.dataset.flip = name;
    const result = el('div', 'flip-result');
    result.dataset.flipResult = name;
    result.setAttribute('role', 'status');
    form.append(input, button);
    cells.flip.append(form, result);

    const row = { name, tr, cells, input, button, result, action: null, dirty: false };
    input.addEventListener('input', () => {
      row.dirty = input.value !== row.action;
    });
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      flip(row);
    });
    return row;
  }

  function darkLaunch(r) {
    const d = r.dark_launch || {};
    const box = el('div', 'dark');
    const line = (text, cls) => box.appendChild(el('div', cls || '', text));
    if (r.mode === 'shadow') {
      const m = isNum(d.shadow_matches) ? d.shadow_matches : 0;
      const mm = isNum(d.shadow_mismatches) ? d.shadow_mismatches : 0;
      const rateEl = el('div', 'shadow-rate');
      rateEl.dataset.shadowRate = r.name;
      if (m + mm > 0) {
        const f = m / (m + mm);
        rateEl.dataset.value = String(f);
        rateEl.textContent = percent(f, 1) + ' match';
        rateEl.classList.add(f >= 0.999 ? 'good' : f >= 0.95 ? 'warn' : 'bad');
        rateEl.title = count(m) + ' matches, ' + count(mm) + ' mismatches';
      } else {
        rateEl.dataset.value = '';
        rateEl.textContent = 'no comparisons yet';
      }
      box.appendChild(rateEl);
      line(count(m) + ' match · ' + count(mm) + ' differ · ' + count(d.shadow_errors) + ' err · ' +
        count(d.shadow_dropped) + ' dropped', 'hint');
      if (isNum(d.shadow_latency_ms_avg) && m + mm > 0) {
        line('shadow ' + millis(d.shadow_latency_ms_avg) + ' avg', 'hint');
      }
    } else if (r.mode === 'canary') {
      const n = isNum(d.canary_new) ? d.canary_new : 0;
      const rest = isNum(d.canary_rest) ? d.canary_rest : 0;
      line((isNum(r.share) ? r.share + ' % asked' : 'canary') +
        (n + rest > 0 ? ' · ' + percent(n / (n + rest), 1) + ' got' : ''));
      line(count(n) + ' new · ' + count(rest) + ' other', 'hint');
    } else if (r.mode === 'fallback') {
      line(count(d.fallbacks) + ' fallbacks');
    } else {
      line('—', 'muted');
    }
    if (isNum(d.rollbacks) && d.rollbacks > 0) {
      line('rolled back ' + count(d.rollbacks) + '×', 'bad');
    }
    return box;
  }

  function updateRouteRow(row, r) {
    const c = row.cells;
    setText(c.match, r.match);
    if (Array.isArray(r.conditions) && r.conditions.length > 0) {
      c.match.appendChild(el('div', 'hint', r.conditions.join(', ')));
    }
    c.action.replaceChildren(el('code', '', r.action));
    if (r.changed && typeof r.changed === 'object') {
      const at = parseTime(r.changed.at);
      const who = typeof r.changed.by === 'string' ? r.changed.by : '?';
      const was = typeof r.changed.before === 'string' ? r.changed.before : '?';
      c.action.appendChild(el('div', 'hint', 'was ' + was + ' · by ' + who +
        (at ? ' at ' + clock(new Date(at)) : '')));
    }
    setText(c.mode, r.mode || 'direct');
    const side = routeSide(r);
    c.side.replaceChildren(sidePill(side));
    row.tr.dataset.side = side;
    if (r.mode && r.mode !== 'direct' && (r.new_side || r.legacy_side)) {
      // Two upstreams take part; say which is which.
      c.upstream.replaceChildren();
      for (const [label, name] of [['new', r.new_side], ['legacy', r.legacy_side]]) {
        const line = el('div', 'side-line');
        line.append(el('span', 'kind-label', label), el('span', '', name || '—'));
        c.upstream.appendChild(line);
      }
    } else {
      c.upstream.replaceChildren(el('span', '', r.upstream || '—'));
      if (r.kind) c.upstream.appendChild(el('span', 'kind', r.kind));
    }
    const k = r.counters || {};
    setText(c.requests, count(k.requests));
    setText(c.faults, count(k.faults));
    setText(c.errors, count(k.errors));
    setText(c.events, count(k.events));
    c.faults.classList.toggle('warn-text', isNum(k.faults) && k.faults > 0);
    c.errors.classList.toggle('bad-text', isNum(k.errors) && k.errors > 0);
    c.dark.replaceChildren(darkLaunch(r));

    // The input follows the route unless the operator is typing in it.
    const changedElsewhere = row.action !== r.action;
    row.action = r.action;
    if (!row.dirty && (changedElsewhere || document.activeElement !== row.input)) {
      row.input.value = r.action;
    }
    row.dirty = row.input.value !== row.action;
  }

  function renderRoutes(res) {
    const note = $('routes-note');
    if (!res || res.status !== 200 || !Array.isArray(res.json)) {
      note.hidden = false;
      note.textContent = !res ? 'no answer' : res.status === 404 ? 'not available on this proxy'
        : 'GET /routes failed: ' + reason(res);
      setText('routes-new', '—');
      setText('routes-new-detail', '');
      return;
    }
    note.hidden = true;
    const routes = res.json;
    state.routes = routes;
    const body = $('routes-body');
    const seen = new Set();
    let prevTr = null;
    for (const r of routes) {
      if (!r || typeof r.name !== 'string') continue;
      let row = state.routeRows.get(r.name);
      if (!row) {
        row = makeRouteRow(r.name);
        state.routeRows.set(r.name, row);
      }
      updateRouteRow(row, r);
      // Rows are moved, never rebuilt: an input being typed in keeps its
      // focus and a flip's answer stays beside its route.
      const want = prevTr ? prevTr.nextSibling : body.firstChild;
      if (want !== row.tr) body.insertBefore(row.tr, want);
      prevTr = row.tr;
      seen.add(r.name);
    }
    for (const [name, row] of state.routeRows) {
      if (!seen.has(name)) {
        row.tr.remove();
        state.routeRows.delete(name);
      }
    }
    const sides = routes.map(routeSide);
    const onNew = sides.filter((s) => s === 'new').length;
    const canary = sides.filter((s) => s === 'canary').length;
    setText('routes-new', onNew + ' of ' + routes.length);
    setText('routes-new-detail', canary > 0 ? canary + ' in canary' : '');
  }

  async function flip(row) {
    const action = row.input.value.trim();
    const result = row.result;
    const show = (kind, text, lines) => {
      result.dataset.state = kind;
      result.textContent = text;
      for (const line of lines || []) result.appendChild(el('div', 'flip-detail', line));
    };
    if (!action) {
      show('error', 'type an action: an upstream name, or a shadow, canary or fallback action');
      return;
    }
    const before = row.action;
    row.button.disabled = true;
    show('pending', 'flipping to ' + action + '…');
    try {
      const res = await api('PUT', '/routes/' + encodeURIComponent(row.name), { action });
      const at = clock(new Date());
      if (res.status === 200 && res.json && typeof res.json.action === 'string') {
        row.dirty = false;
        updateRouteRow(row, res.json);
        show('ok', before === res.json.action
          ? '✓ ' + at + ' unchanged: already ' + res.json.action
          : '✓ ' + at + ' flipped: ' + (before || '?') + ' → ' + res.json.action);
        poll();
      } else if (res.status === 401) {
        show('error', '✗ the token was refused');
        askForToken('The token was refused; enter it again.');
      } else {
        const j = res.json;
        const head = j && typeof j.error === 'string' ? j.error : reason(res);
        const lines = j && typeof j.error === 'string' ? details(res) : [];
        show('error', '✗ ' + at + ' ' + res.status + ': ' + head + (lines.length ? ':' : ''), lines);
      }
    } catch (e) {
      show('error', '✗ ' + e.message + '; the route may or may not have flipped');
      poll();
    } finally {
      row.button.disabled = false;
    }
  }

  /* ---- methods ---- */

  function renderMethods(res, prev, dt) {
    const note = $('methods-note');
    const body = $('methods-body');
    if (!res || res.status !== 200 || !res.json || !Array.isArray(res.json.methods)) {
      state.methods = null;
      note.hidden = false;
      note.textContent = !res ? 'no answer'
        : res.status === 404 ? 'not available: ' +
          (res.json && res.json.error ? res.json.error : 'this proxy has no GET /methods')
        : 'GET /methods failed: ' + reason(res);
      body.replaceChildren();
      setText('methods-foot', '');
      setText('methods-new', '—');
      setText('methods-new-detail', '');
      return;
    }
    note.hidden = true;
    state.methods = res.json;
    state.methodRates = { prev, dt };
    drawMethods();
  }

  /* Draws the inventory from the last answer (again when the filter
   * changes), with calls per second against the answer before it. */
  function drawMethods() {
    const inv = state.methods;
    if (!inv) return;
    const { prev, dt } = state.methodRates;
    const body = $('methods-body');
    const filter = $('methods-filter').value.trim().toLowerCase();
    const sideFilter = $('methods-side').value;
    const now = parseTime(inv.now) || Date.now();
    const prevCalls = prev && prev.methodCalls ? prev.methodCalls : null;
    const methods = inv.methods.filter((m) => m && typeof m.method === 'string');
    methods.sort((a, b) => (b.calls || 0) - (a.calls || 0) ||
      (a.method < b.method ? -1 : a.method > b.method ? 1 : 0));

    const shown = methods.filter((m) => (!filter || m.method.toLowerCase().includes(filter)) &&
      (!sideFilter || (m.side || 'none') === sideFilter));
    const frag = document.createDocumentFragment();
    for (const m of shown.slice(0, MAX_METHOD_ROWS)) {
      const tr = el('tr');
      tr.dataset.method = m.method;
      tr.dataset.side = m.side || 'none';
      const td = (col, text, cls) => {
        const cell = el('td', cls || '', text);
        cell.dataset.col = col;
        tr.appendChild(cell);
        return cell;
      };
      td('method', null).appendChild(el('code', '', m.method));
      td('calls', count(m.calls), 'num');
      const before = prevCalls && prevCalls.get(m.method);
      td('rate', isNum(before) && dt > 0 && m.calls >= before ? rate((m.calls - before) / dt) : '',
        'num muted');
      td('faults', count(m.faults), 'num' + (m.faults > 0 ? ' warn-text' : ''));
      td('errors', count(m.errors), 'num' + (m.errors > 0 ? ' bad-text' : ''));
      const lat = m.latency_ms || {};
      td('p50', millis(lat.p50), 'num');
      const p99 = td('p99', millis(lat.p99), 'num');
      if (isNum(lat.max)) p99.title = 'max ' + millis(lat.max);

      const shareCell = td('new-share', null, 'share-cell');
      const bar = el('span', 'minibar');
      const fill = el('span', 'minibar-fill');
      const f = isNum(m.new_share) ? Math.max(0, Math.min(1, m.new_share)) : 0;
      fill.style.width = f * 100 + '%';
      bar.appendChild(fill);
      shareCell.append(bar, el('span', 'share-text', percent(m.new_share, 0)));
      shareCell.dataset.value = isNum(m.new_share) ? String(m.new_share) : '';
      shareCell.title = count(m.new_calls) + ' new · ' + count(m.legacy_calls) + ' legacy';

      td('side', null).appendChild(sidePill(m.side));
      const route = td('route', m.route || '—', m.route ? '' : 'muted');
      if (m.upstream) route.appendChild(el('span', 'kind', '→ ' + m.upstream));
      const seen = parseTime(m.last_seen);
      const last = td('last-seen', seen ? ago((now - seen) / 1000) : '—', 'num muted');
      if (m.last_seen) last.title = m.last_seen;
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);

    const onNew = methods.filter((m) => m.side === 'new').length;
    const canary = methods.filter((m) => m.side === 'canary').length;
    setText('methods-new', onNew + ' of ' + methods.length);
    setText('methods-new-detail', canary > 0 ? canary + ' in canary' : '');
    let foot = methods.length + ' methods';
    if (shown.length !== methods.length) foot = shown.length + ' of ' + foot + ' match';
    if (shown.length > MAX_METHOD_ROWS) foot += '; the first ' + MAX_METHOD_ROWS + ' shown';
    if (isNum(inv.methods_tracked) && inv.methods_tracked > methods.length) {
      foot += ' · the ' + methods.length + ' busiest of ' + count(inv.methods_tracked) + ' tracked';
    }
    if (isNum(inv.untracked_calls) && inv.untracked_calls > 0) {
      foot += ' · ' + count(inv.untracked_calls) + ' calls of methods beyond max_methods (' +
        count(inv.max_methods) + ' a worker) not listed';
    }
    setText('methods-foot', foot);
  }

  /* ---- events and spool ---- */

  const FLOW = [
    ['spooled', 'strangler_events_spooled_total'],
    ['published', 'strangler_events_published_total'],
    ['confirmed', 'strangler_events_confirmed_total'],
    ['failed', 'strangler_events_failed_total'],
    ['skipped', 'strangler_events_skipped_total'],
  ];

  /* Sets a figure's text and the class that colours it ('' for none). */
  function figure(id, text, cls) {
    const e = $(id);
    e.textContent = text;
    e.className = cls || '';
  }

  function renderEvents(samples, prev, dt, metricsRes) {
    const note = $('events-note');
    const figures = [$('events-figures'), $('spool-figures')];
    if (!samples) {
      note.hidden = false;
      note.textContent = !metricsRes ? 'no answer'
        : metricsRes.status === 404 ? 'not available: this proxy has no GET /metrics'
        : 'GET /metrics failed: ' + reason(metricsRes);
      figures.forEach((f) => { f.hidden = true; });
      return;
    }
    if (metric(samples, 'strangler_events_spooled_total') === null &&
        metric(samples, 'strangler_spool_bytes') === null) {
      note.hidden = false;
      note.textContent = 'No event pipeline on this proxy: no route intercepts into a spool.';
      figures.forEach((f) => { f.hidden = true; });
      return;
    }
    note.hidden = true;
    figures.forEach((f) => { f.hidden = false; });
    const prevSamples = prev && prev.samples;
    for (const [key, name] of FLOW) {
      const v = metric(samples, name);
      const before = metric(prevSamples, name);
      const r = v !== null && before !== null && dt > 0 && v >= before ? (v - before) / dt : null;
      setText('ev-' + key, count(v));
      $('ev-' + key + '-rate').textContent = r === null ? '' : rate(r);
    }
    // Skipped events are lost and a nack or a write error needs a look; a
    // returned event only had no queue bound for its key (nobody listens
    // for that type yet), which is worth knowing but no alarm.
    const skipped = metric(samples, 'strangler_events_skipped_total');
    $('ev-skipped').parentElement.classList.toggle('alarm', skipped > 0);
    const reasons = samples.filter((s) => s.name === 'strangler_events_failed_total' && s.value > 0);
    const serious = reasons.some((s) => s.labels.reason !== 'returned');
    const failedStep = $('ev-failed').parentElement;
    failedStep.classList.toggle('alarm', serious);
    failedStep.classList.toggle('notice', !serious && reasons.length > 0);
    setText('ev-failed-detail', reasons.map((s) =>
      count(s.value) + ' ' + (s.labels.reason || 'failed').replace(/_/g, ' ')).join(' · '));

    const unconfirmed = metric(samples, 'strangler_spool_unconfirmed_events');
    const oldest = metric(samples, 'strangler_spool_oldest_unconfirmed_age_seconds');
    setText('sp-unconfirmed', count(unconfirmed));
    // Events wait in the spool while the broker is away; a minute is worth
    // a look, five are an incident.
    figure('sp-oldest', unconfirmed === 0 ? 'none waiting' : duration(oldest),
      !isNum(oldest) || oldest < 60 ? '' : oldest < 300 ? 'warn-text' : 'bad-text');
    setText('sp-bytes', bytes(metric(samples, 'strangler_spool_bytes')));
    const full = metric(samples, 'strangler_spool_full');
    if (full === null) figure('sp-full', '—');
    else figure('sp-full', full > 0 ? 'FULL' : 'no', full > 0 ? 'badge bad' : '');
    const connected = metric(samples, 'strangler_broker_connected');
    const configured = metric(samples, 'strangler_broker_configured');
    // Without an events line the spool is the sink: nothing is published,
    // and events wait there by design, not for a broker that is away.
    if (configured === 0) {
      figure('sp-broker', 'none configured');
      figure('sp-blocked', 'the spool is the sink');
      figure('sp-oldest', '—');
      return;
    }
    // Disconnected is an alarm when events wait for the broker; with none
    // waiting it is only worth a glance.
    if (connected === null) figure('sp-broker', '—');
    else if (connected > 0) figure('sp-broker', 'connected', 'badge good');
    else figure('sp-broker', 'not connected', unconfirmed > 0 ? 'badge bad' : 'badge warn');
    const blocked = metric(samples, 'strangler_broker_blocked');
    if (blocked === null) figure('sp-blocked', '—');
    else figure('sp-blocked', blocked > 0 ? 'blocked by the broker' : 'flowing',
      blocked > 0 ? 'badge warn' : '');
  }

  function renderHeader(samples) {
    const version = metricLabel(samples, 'strangler_build_info', 'version');
    const v = $('version');
    v.hidden = !version;
    if (version) v.textContent = 'v' + version;
    const start = metric(samples, 'strangler_start_time_seconds') ??
      metric(samples, 'process_start_time_seconds');
    const u = $('uptime');
    u.hidden = !isNum(start) || start <= 0;
    if (!u.hidden) u.textContent = 'up ' + duration(Date.now() / 1000 - start);
  }

  /* ---- polling ---- */

  function schedule() {
    clearTimeout(state.timer);
    // A tab nobody looks at asks the proxy for nothing; it catches up the
    // moment it is shown again (visibilitychange below).
    if (document.hidden) return;
    state.timer = setTimeout(poll, POLL_MS);
  }

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) poll();
  });

  async function poll() {
    clearTimeout(state.timer);
    const seq = ++state.pollSeq;
    let routes;
    let methods;
    let metricsRes;
    try {
      // Until a token has worked, one request finds out whether it does:
      // each refusal is a warning in the proxy's log.
      if (!state.lastOkAt) {
        routes = await api('GET', '/routes');
        if (routes.status === 401) {
          if (seq === state.pollSeq) askForToken(state.token ? 'The proxy refused this token.' : '');
          return;
        }
      }
      [routes, methods, metricsRes] = await Promise.all([
        routes ? Promise.resolve(routes) : api('GET', '/routes'),
        // The proxy picks the busiest: thousands of names never cross the wire
        // every poll.
        api('GET', '/methods?limit=' + MAX_METHOD_ROWS),
        api('GET', '/metrics')]);
    } catch (e) {
      if (seq !== state.pollSeq) return;
      state.lastError = e.message;
      refreshStatus();
      schedule();
      return;
    }
    // A later poll (started by a flip) has newer figures.
    if (seq !== state.pollSeq) return;
    if ([routes, methods, metricsRes].some((r) => r.status === 401)) {
      askForToken(state.token ? 'The proxy refused this token.' : '');
      return;
    }
    state.authFailed = false;
    state.lastError = null;
    $('token-panel').hidden = true;
    $('data').hidden = false;
    $('token-forget').hidden = !state.token;

    const now = performance.now();
    const prev = state.prev;
    const dt = prev ? (now - prev.at) / 1000 : 0;
    const samples = metricsRes.status === 200 ? parseMetrics(metricsRes.text) : null;

    renderRoutes(routes);
    renderMethods(methods, prev, dt);
    const totals = sideTotals(state.methods, samples);
    renderShare(totals, prev, dt);
    renderEvents(samples, prev, dt, metricsRes);
    renderHeader(samples);

    const methodCalls = new Map();
    if (state.methods) {
      for (const m of state.methods.methods) {
        if (m && typeof m.method === 'string') methodCalls.set(m.method, m.calls);
      }
    }
    state.prev = { at: now, totals, samples, methodCalls };
    state.lastOkAt = Date.now();
    refreshStatus();
    schedule();
  }

  function start() {
    $('token-form').addEventListener('submit', onTokenSubmit);
    $('token-forget').addEventListener('click', onTokenForget);
    $('methods-filter').addEventListener('input', drawMethods);
    $('methods-side').addEventListener('change', drawMethods);
    setInterval(refreshStatus, 1000);
    poll();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
