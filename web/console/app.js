/* web/console/app.js - the security-officer console: plain DOM and fetch, no framework. Every
 * value from the server is written with textContent (never as HTML). State-changing requests
 * carry the CSRF token of GET /tps/rest/account in X-TPS-CSRF and a JSON body. */
'use strict';

(function () {
  const API = '/tps/rest';
  const PAGE = 20;
  const state = { account: null, csrf: '', start: 0, total: 0, query: {}, token: null };

  const $ = (id) => document.getElementById(id);

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function banner(msg, kind) {
    const b = $('banner');
    if (!msg) { b.hidden = true; b.textContent = ''; return; }
    b.textContent = msg;
    b.className = 'banner ' + (kind || 'error');
    b.hidden = false;
  }

  function served(s) {
    if (!s) return;
    $('served').textContent = 'Served by instance ' + (s.Instance || '?') +
      (s.LdapServer ? ' \u2022 token DB ' + s.LdapServer : '');
  }

  async function api(method, path, body) {
    const opts = { method: method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (method !== 'GET') {
      opts.headers['Content-Type'] = 'application/json';
      opts.headers['X-TPS-CSRF'] = state.csrf;
      opts.body = JSON.stringify(body || {});
    }
    let res;
    try {
      res = await fetch(API + path, opts);
    } catch (e) {
      throw new Error('the server cannot be reached (' + e.message + ')');
    }
    const type = res.headers.get('Content-Type') || '';
    const data = type.startsWith('application/json') ? await res.json() : null;
    if (data && data.Served) served(data.Served);
    if (!res.ok) {
      const err = new Error((data && data.Message) || ('HTTP ' + res.status));
      err.status = res.status;
      err.data = data;
      throw err;
    }
    return data;
  }

  function fmtTime(t) {
    /* YYYYMMDDhhmmssZ -> YYYY-MM-DD hh:mm:ss */
    if (!t || !/^\d{14}Z$/.test(t)) return t || '';
    return t.slice(0, 4) + '-' + t.slice(4, 6) + '-' + t.slice(6, 8) + ' ' +
      t.slice(8, 10) + ':' + t.slice(10, 12) + ':' + t.slice(12, 14);
  }

  function statusBadge(st) {
    const name = st && st.name ? st.name : 'UNKNOWN';
    const b = el('span', st && st.label ? st.label : name, 'badge st-' + name.toLowerCase());
    b.title = name;
    b.dataset.status = name;
    return b;
  }

  /* ---- account ---- */
  async function loadAccount() {
    const a = await api('GET', '/account');
    state.account = a;
    state.csrf = a.csrfToken;
    const who = $('who');
    who.textContent = '';
    who.appendChild(el('strong', a.FullName || a.UserID));
    who.appendChild(el('span', ' (' + a.UserID + ') \u2022 ' + a.Roles.join(', ')));
    who.dataset.roles = a.Roles.join(',');
  }

  /* ---- search ---- */
  async function search(start) {
    banner('');
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(state.query)) if (v) q.set(k, v);
    q.set('start', String(start));
    q.set('size', String(PAGE));
    const data = await api('GET', '/tokens?' + q.toString());
    state.start = start;
    state.total = data.total;
    const body = $('tokens').querySelector('tbody');
    body.textContent = '';
    for (const t of data.entries) {
      const tr = el('tr');
      const a = el('a', t.TokenID, 'mono');
      a.href = '#token/' + encodeURIComponent(t.TokenID);
      a.dataset.cuid = t.TokenID;
      const td = el('td');
      td.appendChild(a);
      tr.appendChild(td);
      tr.appendChild(el('td', t.UserID || ''));
      tr.appendChild(el('td', t.Type || ''));
      const st = el('td');
      st.appendChild(statusBadge(t.Status));
      tr.appendChild(st);
      tr.appendChild(el('td', fmtTime(t.ModifyTimestamp)));
      body.appendChild(tr);
    }
    $('tokens').hidden = data.entries.length === 0;
    $('result-count').textContent = data.total === 0 ? 'No token matches.' :
      data.total + (data.totalExact ? '' : '+') + ' token' + (data.total === 1 ? '' : 's') + ' found.';
    const last = Math.min(start + data.entries.length, data.total);
    $('page-info').textContent = data.total ? (start + 1) + '\u2013' + last + ' of ' + data.total : '';
    $('prev').disabled = start === 0;
    $('next').disabled = start + PAGE >= data.total;
  }

  /* ---- one token ---- */
  function field(dl, name, value) {
    dl.appendChild(el('dt', name));
    const dd = el('dd');
    if (value instanceof Node) dd.appendChild(value); else dd.textContent = value || '\u2014';
    dl.appendChild(dd);
  }

  async function showToken(cuid) {
    banner('');
    const t = await api('GET', '/tokens/' + encodeURIComponent(cuid));
    state.token = t;
    $('search-section').hidden = true;
    $('token-section').hidden = false;
    $('t-id').textContent = t.TokenID;
    const dl = $('t-fields');
    dl.textContent = '';
    field(dl, 'Status', statusBadge(t.Status));
    field(dl, 'Reason', t.Reason);
    field(dl, 'User', t.UserID);
    field(dl, 'Type', t.Type);
    field(dl, 'Applet', t.AppletID);
    field(dl, 'Key info', t.KeyInfo);
    field(dl, 'Policy', t.Policy);
    field(dl, 'Created', fmtTime(t.CreateTimestamp));
    field(dl, 'Modified', fmtTime(t.ModifyTimestamp));
    const canChange = state.account && state.account.CanChangeStatus && t.NextStates.length > 0;
    $('change').hidden = !canChange;
    const sel = $('new-status');
    sel.textContent = '';
    for (const s of t.NextStates) {
      const o = el('option', s.label + ' (' + s.name + ')');
      o.value = s.name;
      sel.appendChild(o);
    }
    await Promise.all([loadCerts(cuid), loadActivity(cuid)]);
  }

  async function loadCerts(cuid) {
    const data = await api('GET', '/tokens/' + encodeURIComponent(cuid) + '/certificates');
    const body = $('certs').querySelector('tbody');
    body.textContent = '';
    if (data.entries.length === 0) {
      const tr = el('tr');
      const td = el('td', 'No certificate on this token.', 'muted');
      td.colSpan = 5;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    for (const c of data.entries) {
      const tr = el('tr');
      tr.dataset.serial = c.SerialNumber || '';
      tr.appendChild(el('td', c.SerialNumber, 'mono'));
      tr.appendChild(el('td', c.KeyType));
      tr.appendChild(el('td', c.Subject));
      const st = el('td');
      st.appendChild(el('span', c.Status, 'badge cert-' + String(c.Status || '').toLowerCase()));
      tr.appendChild(st);
      tr.appendChild(el('td', fmtTime(c.NotAfter)));
      body.appendChild(tr);
    }
  }

  async function loadActivity(cuid) {
    const data = await api('GET', '/activities?tokenID=' + encodeURIComponent(cuid) + '&size=50');
    const body = $('activity').querySelector('tbody');
    body.textContent = '';
    if (data.entries.length === 0) {
      const tr = el('tr');
      const td = el('td', 'No activity recorded.', 'muted');
      td.colSpan = 5;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    for (const a of data.entries) {
      const tr = el('tr');
      tr.appendChild(el('td', fmtTime(a.Timestamp)));
      tr.appendChild(el('td', a.Operation));
      tr.appendChild(el('td', a.Result, a.Result === 'success' ? 'ok' : 'bad'));
      tr.appendChild(el('td', a.Message));
      tr.appendChild(el('td', a.IP));
      body.appendChild(tr);
    }
  }

  /* ---- status change with confirmation ---- */
  function confirmDialog(text) {
    return new Promise((resolve) => {
      $('confirm-text').textContent = text;
      const m = $('confirm');
      m.hidden = false;
      $('confirm-yes').focus();
      const done = (v) => {
        m.hidden = true;
        $('confirm-yes').onclick = null;
        $('confirm-no').onclick = null;
        resolve(v);
      };
      $('confirm-yes').onclick = () => done(true);
      $('confirm-no').onclick = () => done(false);
    });
  }

  function showChangeResult(data, failed) {
    const box = $('last-change');
    box.textContent = '';
    box.className = 'result ' + (failed ? 'bad' : 'ok');
    box.appendChild(el('p', data.Activity || data.Message || ''));
    const certs = data.Certificates || [];
    if (certs.length) {
      const t = el('table', null, 'grid');
      const h = el('tr');
      for (const n of ['Serial', 'Action', 'Reason', 'Outcome', 'CA clone']) h.appendChild(el('th', n));
      const thead = el('thead');
      thead.appendChild(h);
      t.appendChild(thead);
      const tb = el('tbody');
      for (const c of certs) {
        const tr = el('tr');
        tr.appendChild(el('td', c.SerialNumber, 'mono'));
        tr.appendChild(el('td', c.Action));
        tr.appendChild(el('td', c.RevocationReason || ''));
        tr.appendChild(el('td', c.Outcome + (c.Error ? ': ' + c.Error : '')));
        tr.appendChild(el('td', c.Clone || ''));
        tb.appendChild(tr);
      }
      t.appendChild(tb);
      box.appendChild(t);
    }
    if (data.Served) {
      box.appendChild(el('p', 'Instance ' + data.Served.Instance +
        (data.Served.LdapServer ? ', token DB ' + data.Served.LdapServer : ''), 'muted'));
    }
    box.hidden = false;
  }

  async function changeStatus() {
    const t = state.token;
    const to = $('new-status').value;
    const reason = $('change-reason').value.trim();
    if (!t || !to) return;
    const ok = await confirmDialog('Change token ' + t.TokenID + ' from ' + t.Status.name +
      ' to ' + to + '?');
    if (!ok) return;
    $('change-btn').disabled = true;
    try {
      const data = await api('PATCH', '/tokens/' + encodeURIComponent(t.TokenID),
        { Status: to, Reason: reason });
      await showToken(t.TokenID);
      showChangeResult(data, false);
      banner('Token ' + t.TokenID + ' is now ' + data.Status.label + ' (' + data.Status.name + ').', 'info');
    } catch (e) {
      banner('Status change failed: ' + e.message);
      if (e.data) showChangeResult(e.data, true);
      if (e.status === 403 && e.data && e.data.Error === 'csrf') await loadAccount();
    } finally {
      $('change-btn').disabled = false;
    }
  }

  /* ---- navigation ---- */
  async function route() {
    const m = /^#token\/([0-9A-Fa-f]{1,40})$/.exec(location.hash);
    try {
      if (m) {
        await showToken(m[1]);
      } else {
        $('token-section').hidden = true;
        $('search-section').hidden = false;
      }
    } catch (e) {
      banner(e.message);
    }
  }

  async function start() {
    $('search-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      state.query = { filter: $('q-filter').value.trim(), status: $('q-status').value,
        userID: $('q-user').value.trim() };
      if (location.hash) location.hash = '';
      search(0).catch((e) => banner(e.message));
    });
    $('prev').addEventListener('click', () => search(Math.max(0, state.start - PAGE)).catch((e) => banner(e.message)));
    $('next').addEventListener('click', () => search(state.start + PAGE).catch((e) => banner(e.message)));
    $('back').addEventListener('click', () => { location.hash = ''; });
    $('change-btn').addEventListener('click', () => { changeStatus(); });
    window.addEventListener('hashchange', route);
    try {
      await loadAccount();
    } catch (e) {
      $('who').textContent = 'Not signed in';
      banner(e.status === 401 ? 'A client certificate is required.' :
        e.status === 403 ? 'Your certificate has no TPS role: ' + e.message : e.message);
      document.body.dataset.ready = 'denied';
      return;
    }
    await route();
    if (!location.hash) await search(0).catch((e) => banner(e.message));
    document.body.dataset.ready = 'yes';
  }

  document.addEventListener('DOMContentLoaded', start);
})();
