#!/usr/bin/env node
/*
 * Drives Debian's chromium (headless, through playwright-core) against the
 * chat demo page the daemon serves, for tests/integration/test_chat_browser.py.
 *
 *   node tests/browser/chat_page.js <page url> --reply-text TEXT --screenshot PATH
 *        [--text TEXT] [--timeout-ms N] [--chromium /usr/bin/chromium]
 *   node tests/browser/chat_page.js <page url> --scenario reconnect [--text TEXT]
 *
 * --text is what the visitor types; each "\n" in it is typed as Shift+Enter.
 *
 * It prints one JSON object per line on stdout, as things happen, each with
 * "t" (ms since the start):
 *   {"event":"ws_open"|"ws_close","url":...}  {"event":"ws","dir":"sent"|"received","payload":{...}}
 *        every websocket and every frame
 *   {"event":"console"|"pageerror"|"http_error",...}   the page's console, errors, HTTP >= 400
 *   {"event":"welcome","status":...,"labels":{...}}     connected: the status line, accessible names
 *
 * Scenario "basic" (the default):
 *   {"event":"shown","state":...,"text":...}            the message is in the log (Enter)
 *   {"event":"acked","conversation_id":...,"id":...,"client_id":...,"text":...,"states":[...]}
 *        marked sent on the daemon's ack: the caller now posts an agent
 *        reply whose text is --reply-text
 *   {"event":"reply","id":...,"text":...,"meta":...}    that reply is shown in the page
 *   {"event":"screenshot","path":...}
 *   {"event":"keyboard",...}                            Escape closes, the launcher reopens
 *   {"event":"reloaded","messages":[...]}               after a reload (resume from localStorage)
 *
 * Scenario "reconnect" (the caller stops and restarts the daemon; it says
 * so with a line on stdin):
 *   {"event":"welcome",...}      caller: stop the daemon, then write "stopped\n"
 *   {"event":"disconnected","status":...}
 *   {"event":"typed_offline","states":[...]}  a message typed while the daemon is down
 *                                caller: start it again, then write "restarted\n"
 *   {"event":"acked",...,"states":[...],"connections":[...]}  resent after the reconnect, acked
 *
 * Last: {"event":"done","ms":...}, or {"event":"error","step":...,"message":...} and exit 1.
 */
'use strict';

const path = require('path');
const readline = require('readline');
const { chromium } = require('playwright-core');

const t0 = Date.now();
let step = 'start';

function parseArgs(argv) {
  const out = {
    url: null, scenario: 'basic', text: null, replyText: null, screenshot: null, timeoutMs: 15000,
    chromium: '/usr/bin/chromium',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--scenario') out.scenario = next();
    else if (a === '--text') out.text = next();
    else if (a === '--reply-text') out.replyText = next();
    else if (a === '--screenshot') out.screenshot = next();
    else if (a === '--timeout-ms') out.timeoutMs = Number(next());
    else if (a === '--chromium') out.chromium = next();
    else if (!out.url && !a.startsWith('--')) out.url = a;
    else throw new Error(`unknown argument ${a}`);
  }
  const usage = 'usage: chat_page.js <page url> [--scenario basic|reconnect] --reply-text TEXT --screenshot PATH [--text TEXT]';
  if (!out.url || !SCENARIOS[out.scenario]) throw new Error(usage);
  if (out.scenario === 'basic' && (!out.replyText || !out.screenshot)) throw new Error(usage);
  return out;
}

function emit(obj) {
  process.stdout.write(JSON.stringify(Object.assign({ t: Date.now() - t0 }, obj)) + '\n');
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// Lines the caller writes on stdin, one at a time.
const stdinLines = [];
let stdinWaiter = null;
function nextLine(expect, timeoutMs) {
  return new Promise((resolve, reject) => {
    const take = () => {
      const line = stdinLines.shift().trim();
      if (line === expect) resolve(line);
      else reject(new Error(`expected "${expect}" on stdin, got ${JSON.stringify(line)}`));
    };
    if (stdinLines.length) {
      take();
      return;
    }
    const timer = setTimeout(() => {
      stdinWaiter = null;
      reject(new Error(`no "${expect}" on stdin within ${timeoutMs} ms`));
    }, timeoutMs);
    stdinWaiter = () => {
      clearTimeout(timer);
      stdinWaiter = null;
      take();
    };
  });
}

// The messages the widget shows, from its DOM (data-* attributes it keeps
// on each message) -- what a visitor sees, in page order.
async function shownMessages(page) {
  return page.$$eval('.omr-chat-log .omr-chat-msg', (nodes) => nodes.map((n) => ({
    id: n.getAttribute('data-id'),
    client_id: n.getAttribute('data-client-id'),
    direction: n.getAttribute('data-direction'),
    state: n.getAttribute('data-state'),
    text: n.querySelector('.omr-chat-bubble').textContent,
    meta: n.querySelector('.omr-chat-meta').textContent,
  })));
}

async function connection(page) {
  return page.locator('.omr-chat').getAttribute('data-connection');
}

async function waitConnected(page, timeout) {
  await page.waitForFunction(() => {
    const r = document.querySelector('.omr-chat');
    return r && r.getAttribute('data-connection') === 'connected';
  }, null, { timeout });
  return (await page.getByRole('status').textContent()).trim();
}

async function ownStates(page) {
  return page.evaluate(() => window.__omrStates.filter((s) => s[0] === 'in').map((s) => s[1]));
}

async function typeMessage(page, text) {
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.click();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (i > 0) await page.keyboard.press('Shift+Enter');
    await page.keyboard.type(lines[i]);
  }
  const before = await box.inputValue();
  check(before === text, `Shift+Enter kept a new line in the box: ${JSON.stringify(before)}`);
  check((await shownMessages(page)).filter((m) => m.direction === 'in').length === 0, 'nothing sent before Enter');
  await page.keyboard.press('Enter');
  await page.locator('.omr-chat-msg[data-direction="in"]').first().waitFor({ state: 'visible' });
  check(await box.inputValue() === '', 'the box is empty after Enter');
  return box;
}

async function waitAcked(page, text) {
  await page.locator('.omr-chat-msg[data-direction="in"][data-state="sent"]').first().waitFor({ state: 'visible' });
  const sent = (await shownMessages(page)).filter((m) => m.direction === 'in');
  check(sent.length === 1, `one own message shown, got ${JSON.stringify(sent)}`);
  check(sent[0].text === text, `own message text ${JSON.stringify(sent[0].text)}`);
  check(/Sent/.test(sent[0].meta), `the ack mark is shown: ${JSON.stringify(sent[0].meta)}`);
  const states = await ownStates(page);
  check(states[0] === 'sending' && states[states.length - 1] === 'sent' && states.indexOf('failed') < 0,
    `own message shown as sending, then sent: ${JSON.stringify(states)}`);
  const conv = await page.locator('.omr-chat').getAttribute('data-conversation');
  return { conversation_id: conv, id: sent[0].id, client_id: sent[0].client_id, text: sent[0].text, meta: sent[0].meta, states };
}

// ---------------------------------------------------------------- scenarios

async function basic(page, opt, dialog) {
  const typed = opt.text || 'Hello from the browser test\nsecond line';
  const T = opt.timeoutMs;

  step = 'type and send';
  const box = await typeMessage(page, typed);
  const early = (await shownMessages(page))[0];
  emit({ event: 'shown', state: early.state, text: early.text });

  step = 'ack';
  const acked = await waitAcked(page, typed);
  emit(Object.assign({ event: 'acked' }, acked));

  step = 'agent reply';
  const reply = page.locator('.omr-chat-msg[data-direction="out"]', { hasText: opt.replyText });
  await reply.first().waitFor({ state: 'visible' });
  const outs = (await shownMessages(page)).filter((m) => m.direction === 'out');
  check(outs.length === 1, `one agent message shown, got ${JSON.stringify(outs)}`);
  emit({ event: 'reply', id: outs[0].id, text: outs[0].text, meta: outs[0].meta });

  step = 'screenshot';
  await page.screenshot({ path: opt.screenshot });
  emit({ event: 'screenshot', path: path.resolve(opt.screenshot) });

  step = 'keyboard';
  await box.focus();
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  const afterEscape = await page.evaluate(() => ({
    focus_label: document.activeElement && document.activeElement.getAttribute('aria-label'),
    expanded: document.querySelector('.omr-chat-launcher').getAttribute('aria-expanded'),
  }));
  await page.keyboard.press('Enter'); // on the focused launcher
  await dialog.waitFor({ state: 'visible' });
  const afterReopen = await page.evaluate(() => ({
    focus_id: document.activeElement && document.activeElement.id,
    focus_is_message_box: document.activeElement === document.querySelector('.omr-chat-input'),
    expanded: document.querySelector('.omr-chat-launcher').getAttribute('aria-expanded'),
  }));
  emit({ event: 'keyboard', after_escape: afterEscape, after_reopen: afterReopen });
  check(afterEscape.focus_label === 'Chat with us' && afterEscape.expanded === 'false', 'Escape closes and focuses the launcher');
  check(afterReopen.focus_is_message_box && afterReopen.expanded === 'true', 'the launcher reopens with focus in the message box');

  step = 'reload';
  await page.reload({ waitUntil: 'load' });
  await dialog.waitFor({ state: 'visible' });
  await waitConnected(page, T);
  await reply.first().waitFor({ state: 'visible' });
  // Give a resumed history time to (wrongly) add duplicates before looking.
  await page.waitForTimeout(1000);
  const again = await shownMessages(page);
  emit({ event: 'reloaded', messages: again });
  check(again.length === 2, `two messages after the reload, got ${again.length}`);
  check(again[0].direction === 'in' && again[0].text === typed && again[0].id === acked.id, 'own message first, same id');
  check(again[1].direction === 'out' && again[1].text === outs[0].text && again[1].id === outs[0].id, 'the reply second, same id');
}

async function reconnect(page, opt) {
  const typed = opt.text || 'Typed while the daemon was down';
  const T = opt.timeoutMs;

  step = 'wait for the daemon to stop';
  await nextLine('stopped', T);
  await page.waitForFunction(() => document.querySelector('.omr-chat').getAttribute('data-connection') !== 'connected',
    null, { timeout: T });
  emit({ event: 'disconnected', connection: await connection(page), status: (await page.getByRole('status').textContent()).trim() });

  step = 'type while offline';
  await typeMessage(page, typed);
  await page.waitForTimeout(300);
  const offline = (await shownMessages(page)).filter((m) => m.direction === 'in');
  check(offline.length === 1 && offline[0].state === 'sending', `shown as sending while offline: ${JSON.stringify(offline)}`);
  emit({ event: 'typed_offline', states: await ownStates(page), status: (await page.getByRole('status').textContent()).trim() });

  step = 'wait for the daemon to restart';
  await nextLine('restarted', T);
  await waitConnected(page, T);
  step = 'ack after reconnect';
  const acked = await waitAcked(page, typed);
  // Time for a wrongly repeated send or a duplicate to show up.
  await page.waitForTimeout(800);
  const after = await shownMessages(page);
  check(after.length === 1, `one message after the reconnect, got ${JSON.stringify(after)}`);
  const connections = await page.evaluate(() => window.__omrConnection);
  emit(Object.assign({ event: 'acked', connections }, acked));
}

const SCENARIOS = { basic, reconnect };

// ---------------------------------------------------------------------- main

async function main() {
  const opt = parseArgs(process.argv.slice(2));
  const T = opt.timeoutMs;
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    stdinLines.push(line);
    if (stdinWaiter) stdinWaiter();
  });

  step = 'launch';
  const browser = await chromium.launch({
    executablePath: opt.chromium,
    headless: true,
    args: ['--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 900, height: 700 }, locale: 'en-US' });
    // Every state a message element of the widget goes through, in order
    // (the "sending" mark may last only milliseconds on a fast machine), and
    // every connection state of the widget with its time.
    await context.addInitScript(() => {
      window.__omrStates = [];
      window.__omrConnection = [];
      const seen = (n) => {
        if (n.nodeType !== 1) return;
        if (n.classList.contains('omr-chat-msg')) {
          window.__omrStates.push([n.getAttribute('data-direction'), n.getAttribute('data-state')]);
        } else if (n.classList.contains('omr-chat')) {
          const c = n.getAttribute('data-connection');
          const last = window.__omrConnection[window.__omrConnection.length - 1];
          if (!last || last[0] !== c) window.__omrConnection.push([c, Math.round(performance.now())]);
        }
      };
      new MutationObserver((records) => records.forEach((r) => {
        if (r.type === 'attributes') seen(r.target);
        else r.addedNodes.forEach(seen);
      })).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state', 'data-connection'] });
    });
    const page = await context.newPage();
    page.setDefaultTimeout(T);
    page.on('console', (m) => emit({ event: 'console', type: m.type(), text: m.text() }));
    page.on('response', (r) => {
      if (r.status() >= 400) emit({ event: 'http_error', url: r.url(), status: r.status() });
    });
    page.on('pageerror', (e) => emit({ event: 'pageerror', message: String(e && e.message ? e.message : e) }));
    page.on('websocket', (ws) => {
      emit({ event: 'ws_open', url: ws.url() });
      const frame = (dir) => (f) => {
        let payload = f.payload;
        try {
          payload = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
        } catch (e) { /* raw */ }
        emit({ event: 'ws', dir, payload });
      };
      ws.on('framesent', frame('sent'));
      ws.on('framereceived', frame('received'));
      ws.on('close', () => emit({ event: 'ws_close', url: ws.url() }));
      ws.on('socketerror', (e) => emit({ event: 'ws_error', url: ws.url(), error: String(e) }));
    });

    step = 'open page';
    const resp = await page.goto(opt.url, { waitUntil: 'load' });
    check(resp && resp.ok(), `GET ${opt.url} answered ${resp && resp.status()}`);
    const dialog = page.getByRole('dialog', { name: 'Chat with us' });
    await dialog.waitFor({ state: 'visible' });

    step = 'welcome';
    const status = await waitConnected(page, T);
    // Every control has an accessible name (role + name lookups fail otherwise).
    const launcher = page.getByRole('button', { name: 'Chat with us' });
    const labels = {
      log: await page.getByRole('log', { name: 'Conversation' }).count(),
      message: await page.getByRole('textbox', { name: 'Message' }).count(),
      send: await page.getByRole('button', { name: 'Send message' }).count(),
      close: await page.getByRole('button', { name: 'Close chat' }).count(),
      launcher: await launcher.count(),
      name: await page.getByRole('textbox', { name: 'Name', includeHidden: true }).count(),
      email: await page.getByRole('textbox', { name: /^Email/, includeHidden: true }).count(),
      log_live: await page.getByRole('log').getAttribute('aria-live'),
      launcher_expanded: await launcher.getAttribute('aria-expanded'),
    };
    emit({ event: 'welcome', status, labels });

    await SCENARIOS[opt.scenario](page, opt, dialog);
    emit({ event: 'done', ms: Date.now() - t0 });
  } finally {
    await browser.close();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    emit({ event: 'error', step, message: String(e && e.stack ? e.stack : e) });
    process.exit(1);
  },
);
