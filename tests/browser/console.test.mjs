// tests/browser/console.test.mjs - drives the security-officer console (web/console/) in
// headless Chromium against two running admin-server instances: log in with a client
// certificate, find an enrolled token, mark it permanently lost with confirmation, see its
// certificates revoked; the same token seen by an operator on the other instance; a
// certificate without a role is refused. Screenshots go to $ARTIFACTS.
// Environment (set by tests/integration/71-admin-console.sh): GW1_URL GW2_URL ADM_CERTS CUID1
// ARTIFACTS CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`missing environment variable ${k}`);
  return v;
};
const GW1 = env('GW1_URL');
const GW2 = env('GW2_URL');
const CERTS = env('ADM_CERTS');
const CUID = env('CUID1');
const OUT = env('ARTIFACTS');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let failures = 0;
const results = [];
function check(cond, what) {
  results.push(`${cond ? 'ok' : 'FAILED'}: ${what}`);
  if (!cond) {
    failures++;
    console.error(`FAILED: ${what}`);
  } else {
    console.log(`ok: ${what}`);
  }
}

// A fresh browser profile holding the certificate of `who` for both instances.
async function open(who) {
  const dir = mkdtempSync(join(tmpdir(), 'tps-console-'));
  const certs = [GW1, GW2].map((origin) => ({
    origin,
    certPath: join(CERTS, `${who}.crt`),
    keyPath: join(CERTS, `${who}.key`),
  }));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    ignoreHTTPSErrors: true, // the server certificate comes from the test's own staff CA
    clientCertificates: certs,
    viewport: { width: 1200, height: 900 },
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`); });
  page.on('pageerror', (e) => problems.push(String(e)));
  return { ctx, page, problems, dir };
}

async function close(b) {
  await b.ctx.close();
  rmSync(b.dir, { recursive: true, force: true });
}

async function shot(page, name) {
  await page.screenshot({ path: join(OUT, name), fullPage: true });
}

async function main() {
  // 1. An agent on gw1 finds the token and marks it lost.
  const a = await open('agent');
  const p = a.page;
  await p.goto(`${GW1}/tps/ui/`);
  await p.waitForSelector('body[data-ready="yes"]', { timeout: 20000 });
  const who = await p.textContent('#who');
  check(who.includes('agent1') && who.includes('agent'), `signed in as agent1 (${who.trim()})`);
  check((await p.textContent('#served')).includes('gw1'), 'footer names instance gw1');
  await shot(p, '01-login.png');

  // A user ID holding markup is shown as text, never run.
  await p.fill('#q-filter', 'onerror');
  await p.click('#search-btn');
  await p.waitForFunction(
    () => document.getElementById('result-count').textContent.startsWith('1 token'), null,
    { timeout: 10000 });
  const evil = await p.textContent('#tokens tbody tr td:nth-child(2)');
  check(evil === process.env.ADM_EVIL_USER, `markup shown as text (${evil})`);
  check(await p.locator('#tokens img').count() === 0 && (await p.title()) !== 'pwned',
    'markup from the token DB does not become HTML');

  await p.fill('#q-filter', 'alice');
  await p.click('#search-btn');
  const found = await p.waitForFunction(
    () => document.getElementById('result-count').textContent.startsWith('1 token'), null,
    { timeout: 10000 }).then(() => true, () => false);
  check(found, 'search finds one token');
  const link = p.locator(`a[data-cuid="${CUID}"]`);
  await link.waitFor({ timeout: 10000 });
  check(await p.locator('#tokens tbody tr').count() === 1, 'one row in the results');
  await shot(p, '02-search.png');

  await link.click();
  await p.waitForFunction((c) => document.getElementById('t-id').textContent === c, CUID);
  await p.waitForSelector('#certs tbody tr[data-serial]');
  const certStatus = await p.$$eval('#certs tbody tr[data-serial] td:nth-child(4)',
    (tds) => tds.map((td) => td.textContent));
  check(certStatus.length === 2 && certStatus.every((s) => s === 'active'),
    `two active certificates before (${certStatus.join(',')})`);
  check(await p.isVisible('#change'), 'the agent sees the status change form');
  const options = await p.$$eval('#new-status option', (os) => os.map((o) => o.value));
  check(options.includes('PERM_LOST') && !options.includes('FORMATTED'),
    `next states follow the transition table (${options.join(',')})`);
  await shot(p, '03-token.png');

  await p.selectOption('#new-status', 'PERM_LOST');
  await p.fill('#change-reason', 'lost on the train');
  await p.click('#change-btn');
  await p.waitForSelector('#confirm:not([hidden])');
  check((await p.textContent('#confirm-text')).includes('PERM_LOST'), 'confirmation names the change');
  await shot(p, '04-confirm.png');
  // Cancel first: nothing may happen.
  await p.click('#confirm-no');
  await p.waitForSelector('#confirm', { state: 'hidden' });
  check((await p.getAttribute('#t-fields .badge', 'data-status')) === 'ACTIVE', 'cancel changes nothing');
  await p.click('#change-btn');
  await p.waitForSelector('#confirm:not([hidden])');
  await p.click('#confirm-yes');
  await p.waitForSelector('#last-change:not([hidden])', { timeout: 30000 });
  await p.waitForFunction(() => document.querySelector('#t-fields .badge')?.dataset.status === 'PERM_LOST',
    null, { timeout: 10000 });
  const after = await p.$$eval('#certs tbody tr[data-serial] td:nth-child(4)',
    (tds) => tds.map((td) => td.textContent));
  check(after.length === 2 && after.every((s) => s === 'revoked'), `certificates revoked (${after.join(',')})`);
  const result = await p.textContent('#last-change');
  check(result.includes('keyCompromise') && /ca[12] 127\.0\.0\.1:\d+/.test(result),
    'the result names the reason and the CA clone that served');
  check(result.includes('Instance gw1'), 'the result names the instance');
  const acts = await p.$$eval('#activity tbody tr td:nth-child(2)', (tds) => tds.map((t) => t.textContent));
  check(acts[0] === 'token_status_change', 'the change is first in the activity list');
  await shot(p, '05-revoked.png');
  check(a.problems.length === 0, `no console errors (${a.problems.join(' | ')})`);
  await close(a);

  // 2. An operator on gw2 sees the same token, lost, and cannot change it.
  const o = await open('operator');
  await o.page.goto(`${GW2}/tps/ui/#token/${CUID}`);
  await o.page.waitForSelector('body[data-ready="yes"]', { timeout: 20000 });
  await o.page.waitForSelector('#certs tbody tr[data-serial]');
  check((await o.page.getAttribute('#t-fields .badge', 'data-status')) === 'PERM_LOST',
    'gw2 shows the same status');
  check(!(await o.page.isVisible('#change')), 'an operator gets no change form');
  check((await o.page.textContent('#served')).includes('gw2'), 'footer names instance gw2');
  await shot(o.page, '06-operator-gw2.png');
  check(o.problems.length === 0, `no console errors (${o.problems.join(' | ')})`);
  await close(o);

  // 3. A certificate without a role is refused.
  const n = await open('norole');
  await n.page.goto(`${GW1}/tps/ui/`);
  await n.page.waitForSelector('body[data-ready="denied"]', { timeout: 20000 });
  check((await n.page.textContent('#banner')).includes('no TPS role'), 'no-role certificate refused');
  check(!(await n.page.isVisible('#tokens')), 'no token list without a role');
  await shot(n.page, '07-no-role.png');
  await close(n);
}

try {
  await main();
} catch (e) {
  failures++;
  console.error(`FAILED: ${e.stack || e}`);
}
writeFileSync(join(OUT, 'results.txt'), results.join('\n') + '\n');
console.log(`console: ${results.length - failures >= 0 ? results.filter((r) => r.startsWith('ok')).length : 0} checks passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
