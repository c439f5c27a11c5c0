#!/usr/bin/env node
/*
 * Drives Debian's chromium (headless, through playwright-core) against the
 * chat demo page the daemon serves, for tests/integration/test_chat_browser.py.
 *
 *   node tests/browser/chat_page.js <page url> --reply-text TEXT --screenshot PATH
 *        [--text TEXT] [--timeout-ms N] [--chromium /usr/bin/chromium]
 *
 * --text is what the visitor types; each "\n" in it is typed as Shift+Enter.
 *
 * It prints one JSON object per line on stdout, as things happen:
 *   {"event":"ws","dir":"sent"|"received","payload":{...}}   every websocket frame
 *   {"event":"console"|"pageerror",...}                       the page's console and errors
 *   {"event":"welcome","status":...,"labels":{...}}            the status line after the welcome
 *   {"event":"shown","state":...,"text":...}                   the message is in the log (Enter)
 *   {"event":"acked","conversation_id":...,"id":...,"client_id":...,"text":...,"states":[...]}
 *        the visitor's message (typed, Enter) is marked sent: the caller now
 *        posts an agent reply whose text is --reply-text
 *   {"event":"reply","id":...,"text":...,"agent":...}          that reply is shown in the page
 *   {"event":"screenshot","path":...}
 *   {"event":"keyboard",...}                                   Escape closes, the launcher reopens
 *   {"event":"reloaded","messages":[...]}                      after a reload (resume from localStorage)
 *   {"event":"done","ms":...}   or   {"event":"error","step":...,"message":...} (exit 1)
 */
'use strict';

const path = require('path');
const { chromium } = require('playwright-core');

function parseArgs(argv) {
  const out = { url: null, text: null, replyText: null, screenshot: null, timeoutMs: 15000, chromium: '/usr/bin/chromium' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--text') out.text = next();
    else if (a === '--reply-text') out.replyText = next();
    else if (a === '--screenshot') out.screenshot = next();
    else if (a === '--timeout-ms') out.timeoutMs = Number(next());
    else if (a === '--chromium') out.chromium = next();
    else if (!out.url && !a.startsWith('--')) out.url = a;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!out.url || !out.replyText || !out.screenshot) {
    throw new Error('usage: chat_page.js <page url> --reply-text TEXT --screenshot PATH [--text TEXT]');
  }
  return out;
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

let step = 'start';

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
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

async function waitWelcome(page, timeout) {
  const status = page.getByRole('status');
  await page.waitForFunction(() => {
    const r = document.querySelector('.omr-chat');
    return r && r.getAttribute('data-connection') === 'connected';
  }, null, { timeout });
  return (await status.textContent()).trim();
}

async function main() {
  const t0 = Date.now();
  const opt = parseArgs(process.argv.slice(2));
  const typed = opt.text || 'Hello from the browser test\nsecond line';
  const T = opt.timeoutMs;

  step = 'launch';
  const browser = await chromium.launch({
    executablePath: opt.chromium,
    headless: true,
    args: ['--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 900, height: 700 }, locale: 'en-US' });
    // Every state a message element of the widget goes through, in order
    // (the "sending" mark may last only milliseconds on a fast machine).
    await context.addInitScript(() => {
      window.__omrStates = [];
      const seen = (n) => {
        if (n.nodeType === 1 && n.classList.contains('omr-chat-msg')) {
          window.__omrStates.push([n.getAttribute('data-direction'), n.getAttribute('data-state')]);
        }
      };
      new MutationObserver((records) => records.forEach((r) => {
        if (r.type === 'attributes') seen(r.target);
        else r.addedNodes.forEach(seen);
      })).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'] });
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
    const status = await waitWelcome(page, T);
    // Every control has an accessible name (role + name lookups fail otherwise).
    const labels = {
      log: await page.getByRole('log', { name: 'Conversation' }).count(),
      message: await page.getByRole('textbox', { name: 'Message' }).count(),
      send: await page.getByRole('button', { name: 'Send message' }).count(),
      close: await page.getByRole('button', { name: 'Close chat' }).count(),
      launcher: await page.getByRole('button', { name: 'Chat with us' }).count(),
      name: await page.getByRole('textbox', { name: 'Name', includeHidden: true }).count(),
      email: await page.getByRole('textbox', { name: /^Email/, includeHidden: true }).count(),
      log_live: await page.getByRole('log').getAttribute('aria-live'),
      launcher_expanded: await page.getByRole('button', { name: 'Chat with us' }).getAttribute('aria-expanded'),
    };
    emit({ event: 'welcome', status, labels });

    step = 'type and send';
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.click();
    const lines = typed.split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (i > 0) await page.keyboard.press('Shift+Enter');
      await page.keyboard.type(lines[i]);
    }
    const before = await box.inputValue();
    check(before === typed, `Shift+Enter kept a new line in the box: ${JSON.stringify(before)}`);
    check((await shownMessages(page)).length === 0, 'nothing sent before Enter');
    await page.keyboard.press('Enter');
    const mine = page.locator('.omr-chat-msg[data-direction="in"]');
    await mine.first().waitFor({ state: 'visible' });
    const early = (await shownMessages(page))[0];
    check(await box.inputValue() === '', 'the box is empty after Enter');
    emit({ event: 'shown', state: early.state, text: early.text });

    step = 'ack';
    await page.locator('.omr-chat-msg[data-direction="in"][data-state="sent"]').first().waitFor({ state: 'visible' });
    const sent = (await shownMessages(page)).filter((m) => m.direction === 'in');
    check(sent.length === 1, `one own message shown, got ${JSON.stringify(sent)}`);
    check(sent[0].text === typed, `own message text ${JSON.stringify(sent[0].text)}`);
    check(/Sent/.test(sent[0].meta), `the ack mark is shown: ${JSON.stringify(sent[0].meta)}`);
    const conv = await page.locator('.omr-chat').getAttribute('data-conversation');
    const states = await page.evaluate(() => window.__omrStates.filter((s) => s[0] === 'in').map((s) => s[1]));
    emit({ event: 'acked', conversation_id: conv, id: sent[0].id, client_id: sent[0].client_id, text: sent[0].text, meta: sent[0].meta, states });
    check(states[0] === 'sending' && states[states.length - 1] === 'sent' && states.indexOf('failed') < 0,
      `own message shown as sending, then sent: ${JSON.stringify(states)}`);

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
    await waitWelcome(page, T);
    await reply.first().waitFor({ state: 'visible' });
    // Give a resumed history time to (wrongly) add duplicates before looking.
    await page.waitForTimeout(1000);
    const again = await shownMessages(page);
    emit({ event: 'reloaded', messages: again });
    check(again.length === 2, `two messages after the reload, got ${again.length}`);
    check(again[0].direction === 'in' && again[0].text === typed && again[0].id === sent[0].id, 'own message first, same id');
    check(again[1].direction === 'out' && again[1].text === outs[0].text && again[1].id === outs[0].id, 'the reply second, same id');

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
