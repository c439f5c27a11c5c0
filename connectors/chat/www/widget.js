/*
 * omniroute chat widget: website live chat over the daemon's websocket
 * (docs/connectors/chat.md). Dependency-free, plain ES2017, no modules.
 *
 * Embed with one tag:
 *   <script src="https://support.example.com/chat/widget.js" data-site="main" async></script>
 *
 * Optional attributes of that tag:
 *   data-site-param="site"  take the site from this query parameter of the page (else data-site)
 *   data-open="true"        open the panel at once
 *   data-title="..."        the panel's heading (default "Chat with us")
 *   data-position="left"    launcher bottom-left instead of bottom-right
 *   data-ws="wss://..."     websocket URL (default: derived from the script's own src)
 *
 * The websocket URL comes from the script's src: http -> ws, https -> wss,
 * ".../chat/widget.js" -> ".../v1/chat/ws?site=<site>". The session token,
 * the largest message id seen and a short transcript live in localStorage
 * (one key per daemon host and site), so a reload resumes the conversation.
 * window.OmnirouteChat[site] has open(), close(), toggle() and send(text).
 */
(function () {
  'use strict';

  var script = document.currentScript;
  if (!script || !/widget\.js(\?|#|$)/.test(script.src || '')) {
    var all = document.querySelectorAll('script[src*="widget.js"]');
    script = all.length ? all[all.length - 1] : null;
  }
  if (!script || !script.src) return;

  var SITE_RE = /^[A-Za-z0-9_.-]{1,64}$/;
  var MAX_TEXT = 4000; // characters (the protocol's limit for a message's text)
  var MAX_KEPT = 100; // messages kept in the local transcript
  var BACKOFF_MIN = 1000;
  var BACKOFF_MAX = 30000;
  var TYPING_EVERY = 3000;
  var ACK_WAIT = 10000; // no ack this long: the socket is presumed dead, reconnect
  var RESEND_AFTER_RESUME = 1500; // a message perhaps stored: wait for the resumed history first
  var RETRY_REFUSED = 3000; // store_unavailable and the like: try that message again
  var PREFIX = 'omr-chat';

  function attr(name, dflt) {
    var v = script.getAttribute(name);
    return v === null || v === '' ? dflt : v;
  }

  var site = attr('data-site', 'main');
  var siteParam = attr('data-site-param', '');
  if (siteParam) {
    try {
      var fromQuery = new URLSearchParams(window.location.search).get(siteParam);
      if (fromQuery) site = fromQuery;
    } catch (e) { /* keep data-site */ }
  }
  if (!SITE_RE.test(site)) {
    if (window.console) console.error('omniroute chat: bad site name ' + JSON.stringify(site));
    return;
  }
  window.OmnirouteChat = window.OmnirouteChat || {};
  if (window.OmnirouteChat[site]) return; // the same site embedded twice

  var wsUrl;
  try {
    wsUrl = attr('data-ws', '') || deriveWsUrl(script.src, site);
  } catch (e) {
    if (window.console) console.error('omniroute chat: cannot derive the websocket URL from ' + script.src);
    return;
  }

  function deriveWsUrl(src, siteName) {
    var u = new URL(src, document.baseURI);
    var proto = u.protocol === 'https:' ? 'wss:' : 'ws:';
    var base = u.pathname.replace(/chat\/widget\.js$/, '');
    if (base === u.pathname) base = u.pathname.replace(/[^/]*$/, '');
    if (base.charAt(base.length - 1) !== '/') base += '/';
    return proto + '//' + u.host + base + 'v1/chat/ws?site=' + encodeURIComponent(siteName);
  }

  // ------------------------------------------------------------------ storage

  var wsHost;
  try {
    wsHost = new URL(wsUrl).host;
  } catch (e) {
    if (window.console) console.error('omniroute chat: bad websocket URL ' + wsUrl);
    return;
  }
  var storeKey = PREFIX + ':v1:' + wsHost + ':' + site;
  var memoryStore = {};

  function loadState() {
    var raw = null;
    try {
      raw = window.localStorage.getItem(storeKey);
    } catch (e) {
      raw = memoryStore[storeKey] || null;
    }
    var s = null;
    try {
      s = raw ? JSON.parse(raw) : null;
    } catch (e) {
      s = null;
    }
    if (!s || typeof s !== 'object') s = {};
    return {
      token: typeof s.token === 'string' ? s.token : null,
      visitorId: typeof s.visitorId === 'string' ? s.visitorId : null,
      conversationId: typeof s.conversationId === 'string' ? s.conversationId : null,
      lastId: typeof s.lastId === 'string' && isId(s.lastId) ? s.lastId : null,
      name: typeof s.name === 'string' ? s.name : '',
      email: typeof s.email === 'string' ? s.email : '',
      messages: Array.isArray(s.messages) ? s.messages.filter(validStored) : [],
    };
  }

  function validStored(m) {
    return m && typeof m === 'object' && typeof m.text === 'string' &&
      (m.direction === 'in' || m.direction === 'out') &&
      (m.id === null || m.id === undefined || isId(m.id));
  }

  function saveState() {
    var kept = messages.slice(-MAX_KEPT).map(function (m) {
      return {
        id: m.id || null,
        clientId: m.clientId || null,
        direction: m.direction,
        text: m.text,
        at: m.at || null,
        agent: m.agent || null,
        state: m.state === 'sent' ? 'sent' : m.permanent ? 'failed' : 'sending', // a failed send is tried again
        error: m.permanent ? m.error : null,
      };
    });
    var raw = JSON.stringify({
      token: state.token,
      visitorId: state.visitorId,
      conversationId: state.conversationId,
      lastId: state.lastId,
      name: state.name,
      email: state.email,
      messages: kept,
    });
    try {
      window.localStorage.setItem(storeKey, raw);
    } catch (e) {
      memoryStore[storeKey] = raw; // storage disabled or full: this page only
    }
  }

  // ---------------------------------------------------------------- stream ids

  function isId(s) {
    return /^\d{1,20}-\d{1,20}$/.test(s);
  }

  // Compares Redis stream ids "<ms>-<seq>" numerically (as digit strings,
  // so that no precision is lost above 2^53).
  function cmpNum(a, b) {
    a = a.replace(/^0+(?=\d)/, '');
    b = b.replace(/^0+(?=\d)/, '');
    if (a.length !== b.length) return a.length < b.length ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  function cmpId(a, b) {
    var pa = a.split('-');
    var pb = b.split('-');
    return cmpNum(pa[0], pb[0]) || cmpNum(pa[1], pb[1]);
  }

  function noteId(id) {
    if (id && isId(id) && (!state.lastId || cmpId(id, state.lastId) > 0)) state.lastId = id;
  }

  // ------------------------------------------------------------------- state

  var state = loadState();
  var messages = []; // {id, clientId, direction, text, at, agent, state, el}
  var ws = null;
  var connected = false; // welcome received on the current socket
  var attempt = 0;
  var retryTimer = null;
  var retryAt = 0;
  var lastTypingSent = 0;
  var agentTypingTimer = null;
  var unread = 0;
  var expected = null; // welcome.expected_reply
  var agentsOnline = null;
  var helloName = null;
  var helloEmail = null;
  var clientSeq = 0;
  var ackTimer = null;

  function newClientId() {
    clientSeq += 1;
    var rnd = '';
    try {
      var a = new Uint32Array(2);
      window.crypto.getRandomValues(a);
      rnd = a[0].toString(36) + a[1].toString(36);
    } catch (e) {
      rnd = Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
    }
    return ('w' + Date.now().toString(36) + '-' + clientSeq.toString(36) + '-' + rnd).slice(0, 64);
  }

  // ------------------------------------------------------------------- styles

  var CSS = [
    '.omr-chat, .omr-chat *, .omr-chat *::before, .omr-chat *::after { box-sizing: border-box; }',
    '.omr-chat { position: fixed; z-index: 2147483000; bottom: 20px; right: 20px; display: flex; flex-direction: column; align-items: flex-end; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1d2430; text-align: left; }',
    '.omr-chat.omr-chat--left { right: auto; left: 20px; align-items: flex-start; }',
    '.omr-chat button, .omr-chat input, .omr-chat textarea { font: inherit; color: inherit; margin: 0; }',
    '.omr-chat-sr { position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0; }',
    '.omr-chat-launcher { display: flex; align-items: center; gap: 8px; padding: 12px 18px; border: 0; border-radius: 28px; background: #1f5fd6; color: #fff; cursor: pointer; box-shadow: 0 4px 14px rgba(0, 0, 0, .25); font-weight: 600; }',
    '.omr-chat-launcher:hover { background: #174bb0; }',
    '.omr-chat-launcher svg { width: 20px; height: 20px; fill: currentColor; }',
    '.omr-chat-badge { min-width: 20px; padding: 0 6px; border-radius: 10px; background: #d7263d; color: #fff; font-size: 12px; line-height: 20px; text-align: center; }',
    '.omr-chat-badge[hidden] { display: none; }',
    '.omr-chat-panel { display: flex; flex-direction: column; width: 360px; max-width: calc(100vw - 40px); height: 520px; max-height: calc(100vh - 100px); margin-bottom: 12px; background: #fff; border: 1px solid #d5dae3; border-radius: 12px; box-shadow: 0 8px 30px rgba(0, 0, 0, .22); overflow: hidden; }',
    '.omr-chat-panel[hidden] { display: none; }',
    '.omr-chat-head { display: flex; align-items: flex-start; gap: 8px; padding: 12px 14px; background: #1f5fd6; color: #fff; }',
    '.omr-chat-head-text { flex: 1; min-width: 0; }',
    '.omr-chat-title { margin: 0; font-size: 16px; font-weight: 700; color: #fff; }',
    '.omr-chat-status { margin: 2px 0 0; font-size: 13px; color: #e6edfb; }',
    '.omr-chat-dot { display: inline-block; width: 8px; height: 8px; margin-right: 6px; border-radius: 50%; background: #aab4c3; vertical-align: 1px; }',
    '.omr-chat[data-connection="connected"] .omr-chat-dot { background: #3ddc84; }',
    '.omr-chat[data-connection="reconnecting"] .omr-chat-dot, .omr-chat[data-connection="connecting"] .omr-chat-dot { background: #ffc043; }',
    '.omr-chat-close { flex: none; width: 32px; height: 32px; border: 0; border-radius: 6px; background: transparent; color: #fff; font-size: 22px; line-height: 1; cursor: pointer; }',
    '.omr-chat-close:hover { background: rgba(255, 255, 255, .18); }',
    '.omr-chat-log { flex: 1; overflow-y: auto; padding: 12px; background: #f5f7fa; }',
    '.omr-chat-empty { margin: 24px 8px; color: #5b6577; text-align: center; font-size: 14px; }',
    '.omr-chat-msg { display: flex; flex-direction: column; max-width: 85%; margin: 0 0 10px; }',
    '.omr-chat-msg--in { margin-left: auto; align-items: flex-end; }',
    '.omr-chat-msg--out { margin-right: auto; align-items: flex-start; }',
    '.omr-chat-bubble { padding: 8px 12px; border-radius: 14px; white-space: pre-wrap; overflow-wrap: anywhere; }',
    '.omr-chat-msg--in .omr-chat-bubble { background: #1f5fd6; color: #fff; border-bottom-right-radius: 4px; }',
    '.omr-chat-msg--out .omr-chat-bubble { background: #fff; border: 1px solid #dde2ea; border-bottom-left-radius: 4px; }',
    '.omr-chat-msg[data-state="sending"] .omr-chat-bubble { opacity: .7; }',
    '.omr-chat-msg[data-state="failed"] .omr-chat-bubble { background: #fbe3e6; color: #8a1424; }',
    '.omr-chat-meta { margin-top: 2px; font-size: 12px; color: #5b6577; }',
    '.omr-chat-note { margin: 6px 0 12px; text-align: center; font-size: 13px; color: #5b6577; }',
    '.omr-chat-typing { min-height: 20px; padding: 0 14px; font-size: 13px; color: #5b6577; background: #f5f7fa; }',
    '.omr-chat-details { padding: 6px 12px 0; border-top: 1px solid #e3e7ee; font-size: 13px; }',
    '.omr-chat-details summary { cursor: pointer; color: #1f5fd6; }',
    '.omr-chat-field { display: block; margin: 6px 0; }',
    '.omr-chat-field input { display: block; width: 100%; margin-top: 2px; padding: 6px 8px; border: 1px solid #b9c1ce; border-radius: 6px; background: #fff; }',
    '.omr-chat-form { display: flex; gap: 8px; align-items: flex-end; padding: 10px 12px 12px; }',
    '.omr-chat-input { flex: 1; min-height: 42px; max-height: 120px; padding: 9px 10px; border: 1px solid #b9c1ce; border-radius: 8px; background: #fff; resize: none; }',
    '.omr-chat-send { flex: none; height: 42px; padding: 0 16px; border: 0; border-radius: 8px; background: #1f5fd6; color: #fff; font-weight: 600; cursor: pointer; }',
    '.omr-chat-send:disabled { background: #8ea9dc; cursor: default; }',
    '.omr-chat-hint { padding: 0 12px 8px; margin: -6px 0 0; font-size: 12px; color: #5b6577; }',
    '.omr-chat :focus-visible { outline: 3px solid #ffbf47; outline-offset: 1px; }',
    '@media (max-width: 480px) { .omr-chat { right: 10px; bottom: 10px; } .omr-chat.omr-chat--left { left: 10px; } .omr-chat-panel { width: calc(100vw - 20px); max-width: none; height: calc(100vh - 90px); max-height: none; } }',
    '@media (prefers-reduced-motion: no-preference) { .omr-chat-panel { animation: omr-chat-in .15s ease-out; } }',
    '@keyframes omr-chat-in { from { opacity: 0; transform: translateY(8px); } to { opacity: 1; transform: none; } }',
  ].join('\n');

  // --------------------------------------------------------------------- DOM

  function el(tag, props, children) {
    var e = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (k) {
        var v = props[k];
        if (v === null || v === undefined || v === false) return;
        if (k === 'text') e.textContent = v;
        else if (k === 'class') e.className = v;
        else e.setAttribute(k, v === true ? '' : String(v));
      });
    }
    (children || []).forEach(function (c) {
      if (c) e.appendChild(c);
    });
    return e;
  }

  var uidBase = PREFIX + '-' + site.replace(/[^A-Za-z0-9_-]/g, '_');
  var ids = {
    panel: uidBase + '-panel',
    title: uidBase + '-title',
    status: uidBase + '-status',
    input: uidBase + '-input',
    hint: uidBase + '-hint',
    name: uidBase + '-name',
    email: uidBase + '-email',
  };

  var LAUNCHER_LABEL = 'Chat with us'; // aria-expanded tells whether the panel is open
  var ICON = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z"/></svg>';

  var root = el('div', { class: PREFIX, 'data-site': site, 'data-connection': 'offline' });
  if (attr('data-position', '') === 'left') root.className += ' ' + PREFIX + '--left';

  var statusText = el('span', { class: PREFIX + '-status-text' });
  var statusLine = el('p', { class: PREFIX + '-status', id: ids.status, role: 'status', 'aria-live': 'polite' }, [
    el('span', { class: PREFIX + '-dot', 'aria-hidden': 'true' }),
    statusText,
  ]);
  var closeBtn = el('button', { type: 'button', class: PREFIX + '-close', 'aria-label': 'Close chat', title: 'Close chat', text: '\u00d7' });
  var log = el('div', {
    class: PREFIX + '-log', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': 'Conversation', tabindex: '0',
  });
  var empty = el('p', { class: PREFIX + '-empty', text: 'Send us a message and we will answer here.' });
  log.appendChild(empty);
  var typingLine = el('div', { class: PREFIX + '-typing', 'aria-live': 'polite' });
  var nameInput = el('input', { id: ids.name, type: 'text', autocomplete: 'name', maxlength: '200' });
  var emailInput = el('input', { id: ids.email, type: 'email', autocomplete: 'email', maxlength: '254' });
  var details = el('details', { class: PREFIX + '-details' }, [
    el('summary', { text: 'Your name and email (optional)' }),
    el('label', { class: PREFIX + '-field', for: ids.name, text: 'Name' }, [nameInput]),
    el('label', { class: PREFIX + '-field', for: ids.email, text: 'Email (so we can answer if you leave)' }, [emailInput]),
  ]);
  var input = el('textarea', {
    id: ids.input, class: PREFIX + '-input', rows: '1', maxlength: String(MAX_TEXT),
    placeholder: 'Type your message\u2026', 'aria-describedby': ids.hint, autocomplete: 'off',
  });
  var sendBtn = el('button', { type: 'submit', class: PREFIX + '-send', 'aria-label': 'Send message', text: 'Send' });
  var form = el('form', { class: PREFIX + '-form', novalidate: true }, [
    el('label', { class: PREFIX + '-sr', for: ids.input, text: 'Message' }),
    input,
    sendBtn,
  ]);
  var hint = el('p', { class: PREFIX + '-hint', id: ids.hint, text: 'Enter to send, Shift+Enter for a new line, Escape to close.' });
  var panel = el('div', {
    class: PREFIX + '-panel', id: ids.panel, role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': ids.title,
    'aria-describedby': ids.status, hidden: true,
  }, [
    el('div', { class: PREFIX + '-head' }, [
      el('div', { class: PREFIX + '-head-text' }, [
        el('h2', { class: PREFIX + '-title', id: ids.title, text: attr('data-title', 'Chat with us') }),
        statusLine,
      ]),
      closeBtn,
    ]),
    log,
    typingLine,
    details,
    form,
    hint,
  ]);
  var badge = el('span', { class: PREFIX + '-badge', hidden: true, 'aria-hidden': 'true' });
  var launcherLabel = el('span', { text: 'Chat' });
  var launcher = el('button', {
    type: 'button', class: PREFIX + '-launcher', 'aria-controls': ids.panel, 'aria-expanded': 'false', 'aria-label': LAUNCHER_LABEL,
  });
  launcher.innerHTML = ICON; // a constant: no visitor or server text
  launcher.appendChild(launcherLabel);
  launcher.appendChild(badge);
  root.appendChild(panel);
  root.appendChild(launcher);

  nameInput.value = state.name;
  emailInput.value = state.email;

  // --------------------------------------------------------------- rendering

  function fmtDuration(seconds) {
    seconds = Math.max(1, Math.round(seconds));
    function n(v, unit) {
      return v + ' ' + unit + (v === 1 ? '' : 's');
    }
    if (seconds < 60) return n(seconds, 'second');
    if (seconds < 3600) return n(Math.ceil(seconds / 60), 'minute');
    if (seconds < 86400) return n(Math.ceil(seconds / 3600), 'hour');
    return n(Math.ceil(seconds / 86400), 'day');
  }

  function toDate(v) {
    if (v === null || v === undefined || v === '') return null;
    var d = typeof v === 'number' ? new Date(v) : new Date(String(v));
    return isNaN(d.getTime()) ? null : d;
  }

  function fmtTime(d) {
    try {
      return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    } catch (e) {
      return d.toISOString().slice(11, 16);
    }
  }

  function expectedText() {
    if (!expected || typeof expected !== 'object') return '';
    var secs = Number(expected.seconds);
    var due = toDate(expected.due);
    // Outside business hours the due time is further away than the target.
    if (due && isFinite(secs) && due.getTime() - Date.now() > (secs + 600) * 1000) {
      var sameDay = due.toDateString() === new Date().toDateString();
      return 'We will reply by ' + (sameDay ? '' : due.toLocaleDateString([], { weekday: 'long' }) + ' ') + fmtTime(due);
    }
    if (isFinite(secs) && secs > 0) return 'We usually reply within ' + fmtDuration(secs);
    return '';
  }

  function renderStatus() {
    var conn = root.getAttribute('data-connection');
    var parts = [];
    if (conn === 'connected') {
      var exp = expectedText();
      if (exp) parts.push(exp);
      else parts.push(agentsOnline === false ? 'We are away; leave a message and we will answer here' : 'Connected');
    } else if (conn === 'connecting') {
      parts.push(attempt ? 'Reconnecting\u2026' : 'Connecting\u2026');
    } else if (conn === 'reconnecting') {
      // No countdown: this line is a live region, read out on every change.
      parts.push(navigator.onLine === false ? 'Offline; waiting for the network' : 'Connection lost; reconnecting\u2026');
    } else {
      parts.push('Offline');
    }
    var text = parts.join('; ');
    if (statusText.textContent !== text) statusText.textContent = text;
  }

  function setConnection(c) {
    root.setAttribute('data-connection', c);
    renderStatus();
    updateSendEnabled();
  }

  function updateSendEnabled() {
    var has = input.value.replace(/\s+/g, '') !== '';
    sendBtn.disabled = !has;
  }

  function messageNode(m) {
    var bubble = el('div', { class: PREFIX + '-bubble', text: m.text });
    var meta = el('div', { class: PREFIX + '-meta' });
    var node = el('div', { class: PREFIX + '-msg ' + PREFIX + '-msg--' + m.direction }, [
      el('span', { class: PREFIX + '-sr', text: m.direction === 'in' ? 'You said:' : ((m.agent && m.agent.name) || 'Support') + ' said:' }),
      bubble,
      meta,
    ]);
    m.el = node;
    m.metaEl = meta;
    updateMessageNode(m);
    return node;
  }

  function updateMessageNode(m) {
    var node = m.el;
    node.setAttribute('data-direction', m.direction);
    node.setAttribute('data-state', m.state);
    if (m.id) node.setAttribute('data-id', m.id);
    if (m.clientId) node.setAttribute('data-client-id', m.clientId);
    var bits = [];
    if (m.direction === 'out') bits.push((m.agent && m.agent.name) || 'Support');
    var d = toDate(m.at);
    var meta = m.metaEl;
    meta.textContent = '';
    if (bits.length) meta.appendChild(document.createTextNode(bits.join(' ') + (d ? ' \u00b7 ' : '')));
    if (d) meta.appendChild(el('time', { datetime: d.toISOString(), text: fmtTime(d) }));
    if (m.direction === 'in') {
      var st = m.state === 'sent' ? 'Sent \u2713' : m.state === 'failed' ? 'Not sent: ' + (m.error || 'will retry') : 'Sending\u2026';
      meta.appendChild(el('span', { class: PREFIX + '-mark', 'data-mark': m.state, text: (d ? ' \u00b7 ' : '') + st }));
    }
  }

  function scrollToEnd() {
    log.scrollTop = log.scrollHeight;
  }

  // Messages with an id are kept in id order; messages still being sent
  // (no id yet) come after them, in the order they were typed.
  function insertMessage(m) {
    if (empty.parentNode) empty.parentNode.removeChild(empty);
    var node = m.el || messageNode(m);
    var idx = messages.length;
    if (m.id) {
      for (var i = 0; i < messages.length; i++) {
        var o = messages[i];
        if (!o.id || cmpId(m.id, o.id) < 0) {
          idx = i;
          break;
        }
      }
    }
    var before = messages[idx];
    messages.splice(idx, 0, m);
    log.insertBefore(node, before ? before.el : null);
  }

  function reposition(m) {
    var i = messages.indexOf(m);
    if (i >= 0) messages.splice(i, 1);
    if (m.el.parentNode) m.el.parentNode.removeChild(m.el);
    insertMessage(m);
  }

  function note(text) {
    if (empty.parentNode) empty.parentNode.removeChild(empty);
    log.appendChild(el('p', { class: PREFIX + '-note', text: text }));
    scrollToEnd();
  }

  function findById(id) {
    for (var i = 0; i < messages.length; i++) if (messages[i].id === id) return messages[i];
    return null;
  }

  function findByClientId(cid) {
    if (!cid) return null;
    for (var i = 0; i < messages.length; i++) if (messages[i].clientId === cid) return messages[i];
    return null;
  }

  // ------------------------------------------------------------ the socket

  function send(obj) {
    if (!ws || ws.readyState !== 1) return false;
    try {
      ws.send(JSON.stringify(obj));
      return true;
    } catch (e) {
      return false;
    }
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (ws) return;
    setConnection('connecting');
    var sock;
    try {
      sock = new WebSocket(wsUrl);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    connected = false;
    sock.onopen = function () {
      if (ws !== sock) return;
      var hello = { type: 'hello' };
      if (state.token) hello.token = state.token;
      if (state.token && state.lastId) hello.last_id = state.lastId;
      helloName = state.name;
      helloEmail = state.email;
      if (state.name) hello.name = state.name;
      if (state.email) hello.email = state.email;
      send(hello);
    };
    sock.onmessage = function (ev) {
      if (ws !== sock) return;
      var msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      if (msg && typeof msg === 'object') handle(msg);
    };
    sock.onclose = function () {
      if (ws !== sock) return;
      ws = null;
      connected = false;
      scheduleReconnect();
    };
    sock.onerror = function () { /* onclose follows */ };
  }

  function scheduleReconnect() {
    ws = null;
    connected = false;
    clearTimeout(retryTimer);
    // Exponential backoff with jitter, within 1 s .. 30 s: the n-th retry
    // waits a random time in [max(1 s, hi / 4), hi], hi = min(30 s, 2^n s)
    // (1-2 s, 1-4 s, 2-8 s, 4-16 s, 7.5-30 s, ...), so that the visitors
    // of a restarted daemon do not all come back in the same second.
    var hi = Math.min(BACKOFF_MAX, BACKOFF_MIN * Math.pow(2, Math.min(attempt, 15) + 1));
    var lo = Math.max(BACKOFF_MIN, hi / 4);
    var delay = lo + Math.random() * (hi - lo);
    attempt += 1;
    retryAt = Date.now() + delay;
    retryTimer = setTimeout(connect, delay);
    setConnection('reconnecting');
  }

  function reconnectNow() {
    if (ws && ws.readyState <= 1) {
      var old = ws;
      ws = null;
      connected = false;
      try {
        old.close(1000);
      } catch (e) { /* closed */ }
    }
    attempt = 0;
    connect();
  }

  function handle(msg) {
    switch (msg.type) {
      case 'welcome':
        onWelcome(msg);
        break;
      case 'ack':
        onAck(msg);
        break;
      case 'message':
        onMessage(msg);
        break;
      case 'typing':
        onTyping(msg);
        break;
      case 'assigned':
        note(((msg.agent && msg.agent.name) || 'An agent') + ' joined the conversation');
        break;
      case 'resolved':
        note('This conversation was marked as resolved. Write again any time.');
        break;
      case 'error':
        onError(msg);
        break;
      default:
        break;
    }
  }

  function onWelcome(msg) {
    var fresh = state.visitorId && msg.visitor_id && msg.visitor_id !== state.visitorId;
    if (fresh) {
      // A new session (the old token expired or was refused): what was kept
      // belongs to another conversation. Unsent messages go to the new one.
      var keep = messages.filter(function (m) {
        return m.direction === 'in' && m.state !== 'sent';
      });
      messages.slice().forEach(function (m) {
        if (keep.indexOf(m) < 0 && m.el.parentNode) m.el.parentNode.removeChild(m.el);
      });
      messages = keep;
      state.lastId = null;
      if (!messages.length && !empty.parentNode) log.insertBefore(empty, log.firstChild);
    }
    if (typeof msg.token === 'string') state.token = msg.token;
    if (typeof msg.visitor_id === 'string') state.visitorId = msg.visitor_id;
    if (typeof msg.conversation_id === 'string') state.conversationId = msg.conversation_id;
    agentsOnline = typeof msg.agents_online === 'boolean' ? msg.agents_online : null;
    expected = msg.expected_reply && typeof msg.expected_reply === 'object' ? msg.expected_reply : null;
    connected = true;
    attempt = 0;
    setConnection('connected');
    if (state.conversationId) root.setAttribute('data-conversation', state.conversationId);
    saveState();
    // Messages typed while offline go now. Those sent before but never
    // acknowledged may be stored already: the resumed history (which follows
    // the welcome) shows them with their client_id; the rest go a moment later.
    var sock = ws;
    var later = false;
    messages.forEach(function (m) {
      if (m.direction !== 'in' || m.state === 'sent' || m.permanent) return;
      m.inFlight = false;
      if (m.tried) later = true;
      else transmit(m);
    });
    if (later) {
      setTimeout(function () {
        if (ws !== sock || !connected) return;
        messages.forEach(function (m) {
          if (m.direction === 'in' && m.state !== 'sent' && !m.permanent && !m.inFlight) transmit(m);
        });
      }, RESEND_AFTER_RESUME);
    }
  }

  function onAck(msg) {
    var m = findByClientId(msg.client_id);
    if (typeof msg.conversation_id === 'string') {
      state.conversationId = msg.conversation_id;
      root.setAttribute('data-conversation', msg.conversation_id);
    }
    noteId(msg.id);
    if (m) {
      var dup = msg.id && findById(msg.id);
      if (dup && dup !== m) {
        // The message already came back (resume) before its ack.
        removeMessage(m);
      } else {
        m.state = 'sent';
        m.error = null;
        m.inFlight = false;
        if (msg.id && isId(msg.id)) m.id = msg.id;
        if (msg.message_id) m.messageId = msg.message_id;
        updateMessageNode(m);
        if (m.id) reposition(m);
      }
    }
    saveState();
  }

  function removeMessage(m) {
    var i = messages.indexOf(m);
    if (i >= 0) messages.splice(i, 1);
    if (m.el && m.el.parentNode) m.el.parentNode.removeChild(m.el);
  }

  function onMessage(msg) {
    if (typeof msg.text !== 'string' || (msg.direction !== 'in' && msg.direction !== 'out')) return;
    var id = typeof msg.id === 'string' && isId(msg.id) ? msg.id : null;
    if (id && findById(id)) {
      noteId(id);
      saveState();
      return; // already shown
    }
    var mine = msg.direction === 'in' ? findByClientId(msg.client_id) : null;
    if (mine) {
      // Our own message coming back (resume, another tab): it is stored.
      mine.state = 'sent';
      mine.error = null;
      mine.inFlight = false;
      if (id) mine.id = id;
      if (msg.at) mine.at = msg.at;
      updateMessageNode(mine);
      if (id) reposition(mine);
    } else {
      var m = {
        id: id,
        clientId: typeof msg.client_id === 'string' ? msg.client_id : null,
        direction: msg.direction,
        text: msg.text,
        at: msg.at || null,
        agent: msg.agent && typeof msg.agent === 'object' ? { id: String(msg.agent.id || ''), name: String(msg.agent.name || '') } : null,
        state: 'sent',
      };
      insertMessage(m);
      if (m.direction === 'out') {
        typingLine.textContent = '';
        if (panel.hidden) {
          unread += 1;
          renderBadge();
        }
      }
    }
    noteId(id);
    scrollToEnd();
    saveState();
  }

  function onTyping(msg) {
    var who = (msg.agent && msg.agent.name) || 'An agent';
    typingLine.textContent = who + ' is typing\u2026';
    clearTimeout(agentTypingTimer);
    agentTypingTimer = setTimeout(function () {
      typingLine.textContent = '';
    }, 6000);
  }

  var ERRORS = {
    message_too_long: 'too long',
    store_unavailable: 'we could not store it; retrying',
  };
  var PERMANENT = { message_too_long: true, bad_message: true, empty_message: true };

  function onError(msg) {
    var code = String(msg.code || '');
    var m = findByClientId(msg.client_id);
    if (!m && code === 'message_too_long') {
      // The oldest message on its way is the one refused.
      for (var i = 0; i < messages.length; i++) {
        if (messages[i].direction === 'in' && messages[i].state === 'sending' && messages[i].inFlight) {
          m = messages[i];
          break;
        }
      }
    }
    if (!m && !PERMANENT[code]) {
      // A refusal the protocol does not tie to a message: the oldest in flight.
      for (var j = 0; j < messages.length; j++) {
        if (messages[j].direction === 'in' && messages[j].inFlight) {
          m = messages[j];
          break;
        }
      }
    }
    if (m && m.state !== 'sent') {
      m.state = 'failed';
      m.inFlight = false;
      m.permanent = !!PERMANENT[code];
      m.error = ERRORS[code] || String(msg.detail || code || 'error');
      updateMessageNode(m);
      saveState();
      if (!m.permanent) {
        var sock = ws;
        setTimeout(function () {
          if (ws === sock && connected && m.state === 'failed' && !m.inFlight) transmit(m);
        }, RETRY_REFUSED);
      }
    } else if (code === 'bad_token') {
      // a fresh session follows in the welcome
    } else if (window.console) {
      console.warn('omniroute chat: ' + code + ': ' + (msg.detail || ''));
    }
  }

  function transmit(m) {
    if (!connected) return false;
    var ok = send({ type: 'message', client_id: m.clientId, text: m.text });
    if (ok) {
      m.inFlight = true;
      m.tried = true;
      m.sentAt = Date.now();
      if (m.state === 'failed') {
        m.state = 'sending';
        updateMessageNode(m);
      }
      armAckWatchdog();
    }
    return ok;
  }

  // A socket can die without a close event (a laptop lid, a NAT timeout):
  // a message not acknowledged within ACK_WAIT starts a new connection,
  // which sends it again.
  function armAckWatchdog() {
    if (ackTimer) return;
    ackTimer = setTimeout(function () {
      ackTimer = null;
      var waiting = false;
      var stale = false;
      var now = Date.now();
      messages.forEach(function (m) {
        if (m.direction === 'in' && m.inFlight) {
          waiting = true;
          if (now - m.sentAt >= ACK_WAIT) stale = true;
        }
      });
      if (stale) reconnectNow();
      else if (waiting) armAckWatchdog();
    }, ACK_WAIT / 2);
  }

  function submit() {
    var text = input.value.replace(/^\s+|\s+$/g, '');
    if (!text) return;
    if (text.length > MAX_TEXT) text = text.slice(0, MAX_TEXT);
    syncDetails();
    if (details.open && (state.name || state.email)) details.open = false;
    var m = { id: null, clientId: newClientId(), direction: 'in', text: text, at: new Date().toISOString(), agent: null, state: 'sending' };
    insertMessage(m);
    input.value = '';
    autosize();
    updateSendEnabled();
    scrollToEnd();
    saveState();
    if (!transmit(m) && !ws) connect();
  }

  // name / email travel in hello: kept as typed, and when the visitor
  // sends a message with details the daemon has not seen, a new hello
  // (the session resumes with its token, nothing is lost) goes first.
  function readDetails() {
    var n = nameInput.value.replace(/^\s+|\s+$/g, '').slice(0, 200);
    var e = emailInput.value.replace(/^\s+|\s+$/g, '').slice(0, 254);
    if (e && !/^[^\s@]+@[^\s@]+$/.test(e)) e = '';
    state.name = n;
    state.email = e;
    saveState();
  }

  function syncDetails() {
    readDetails();
    if (connected && (state.name !== helloName || state.email !== helloEmail)) reconnectNow();
  }

  // ------------------------------------------------------------ behaviour

  function renderBadge() {
    if (unread > 0) {
      badge.textContent = unread > 9 ? '9+' : String(unread);
      badge.hidden = false;
      launcher.setAttribute('aria-label', LAUNCHER_LABEL + ', ' + unread + ' unread message' + (unread === 1 ? '' : 's'));
    } else {
      badge.hidden = true;
      launcher.setAttribute('aria-label', LAUNCHER_LABEL);
    }
  }

  function open(focus) {
    panel.hidden = false;
    launcher.setAttribute('aria-expanded', 'true');
    unread = 0;
    renderBadge();
    scrollToEnd();
    if (!ws && !retryTimer) connect();
    if (focus !== false) input.focus();
  }

  function close() {
    var hadFocus = panel.contains(document.activeElement);
    panel.hidden = true;
    launcher.setAttribute('aria-expanded', 'false');
    renderBadge();
    if (hadFocus) launcher.focus();
  }

  function autosize() {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 120) + 'px';
  }

  launcher.addEventListener('click', function () {
    if (panel.hidden) open();
    else close();
  });
  closeBtn.addEventListener('click', function () {
    close();
  });
  panel.addEventListener('keydown', function (e) {
    if (e.key === 'Escape' || e.key === 'Esc') {
      e.preventDefault();
      close();
    }
  });
  input.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submit();
    }
  });
  input.addEventListener('input', function () {
    autosize();
    updateSendEnabled();
    var now = Date.now();
    if (connected && input.value && now - lastTypingSent > TYPING_EVERY) {
      lastTypingSent = now;
      send({ type: 'typing' });
    }
  });
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    submit();
    input.focus();
  });
  nameInput.addEventListener('change', readDetails);
  emailInput.addEventListener('change', readDetails);
  window.addEventListener('online', function () {
    if (!connected && (ws || retryTimer)) reconnectNow();
  });
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible' && retryTimer && retryAt - Date.now() > 2000) reconnectNow();
  });

  // ------------------------------------------------------------------ start

  function start() {
    if (!document.getElementById(PREFIX + '-style')) {
      var style = el('style', { id: PREFIX + '-style' });
      style.textContent = CSS;
      (document.head || document.documentElement).appendChild(style);
    }
    document.body.appendChild(root);
    state.messages.forEach(function (s) {
      if (s.id && findById(s.id)) return;
      if (s.clientId && findByClientId(s.clientId)) return;
      insertMessage({
        id: s.id || null, clientId: s.clientId || null, direction: s.direction, text: s.text, at: s.at,
        agent: s.agent || null, state: s.id || s.state === 'sent' ? 'sent' : s.state === 'failed' ? 'failed' : 'sending',
        permanent: s.state === 'failed', error: s.error || null, tried: true,
      });
    });
    state.messages = null;
    if (state.conversationId) root.setAttribute('data-conversation', state.conversationId);
    updateSendEnabled();
    // A visitor with a session is connected at once (agents' replies and
    // the unread count); others only when they open the panel.
    if (state.token) connect();
    if (attr('data-open', 'false') === 'true') open(false);
    renderStatus();
  }

  window.OmnirouteChat[site] = {
    open: function () { open(); },
    close: close,
    toggle: function () {
      if (panel.hidden) open();
      else close();
    },
    send: function (text) {
      input.value = String(text);
      submit();
    },
  };

  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start);
})();
