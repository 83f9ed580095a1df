// A real browser on tessera's /login: Debian's Chromium, headless, driven by
// playwright-core. Run by crates/tessera/tests/api/browser.rs, which starts tessera
// (and a gateway, an upstream, a foreign page) and checks what this prints.
//
//   node sign_in.mjs SCENARIO CONFIG_JSON
//
// CONFIG_JSON: {"chromium", "tessera", "start"?, "username", "password", "artifacts",
// "javascript"? (default true)}.
// Prints one JSON line of what the browser saw; exits 1 when the browser did not
// get what a person should (the reason on stderr, and a screenshot of it).

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createHmac } from 'node:crypto';
import jsQR from 'jsqr';
import { PNG } from 'pngjs';
import { chromium } from 'playwright-core';

const [scenario, rawConfig] = process.argv.slice(2);
const config = JSON.parse(rawConfig ?? '{}');
const { tessera, start, username, password, artifacts } = config;
mkdirSync(artifacts, { recursive: true });

// Never hang a test run: a browser stuck on anything is a failure.
const watchdog = setTimeout(() => {
  console.error(`${scenario}: still running after 90 s`);
  process.exit(3);
}, 90_000);

const browser = await chromium.launch({
  executablePath: config.chromium,
  headless: true,
  // Root in a container has no sandbox to offer; nothing here may reach the network.
  args: [
    '--no-sandbox',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const context = await browser.newContext({
  viewport: { width: 800, height: 600 },
  javaScriptEnabled: config.javascript ?? true,
});
const page = await context.newPage();
page.setDefaultTimeout(15_000);

// CSP violations (a blocked redirect after the form post, say) show up only here.
const consoleErrors = [];
// The browser's own look for /favicon.ico (404 everywhere here) is no finding.
page.on('console', (message) => {
  if (message.type() !== 'error') return;
  if (message.location().url?.endsWith('/favicon.ico')) return;
  consoleErrors.push(message.text());
});

const shot = (name) => page.screenshot({ path: join(artifacts, `${scenario}-${name}.png`), fullPage: true });

/// Submits the form on the page and waits for where the browser ends up: the final
/// response, and every request of the way there (redirects included).
async function submit(selector = 'button[type=submit]') {
  const [response] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.click(selector),
  ]);
  assert.ok(response, 'the form post navigated nowhere');
  const chain = [];
  for (let request = response.request(); request; request = request.redirectedFrom()) {
    const answer = await request.response();
    chain.unshift({
      method: request.method(),
      url: request.url(),
      origin: (await request.allHeaders()).origin ?? null,
      status: answer ? answer.status() : null,
      contentType: answer ? (await answer.allHeaders())['content-type'] ?? null : null,
    });
  }
  return { response, chain };
}

async function signIn(name, pass) {
  await page.fill('input[name=username]', name);
  await page.fill('input[name=password]', pass);
  return submit();
}

/// What /v1/session says about this browser's cookies.
async function session() {
  const answer = await page.request.get(`${tessera}/v1/session`);
  const body = await answer.json().catch(() => null);
  return { status: answer.status(), username: body?.user?.username ?? null };
}

const text = (selector) => page.locator(selector).innerText();

/// axe-core's serious and critical findings on the page now at `url`. Our pages
/// allow no script (CSP), so axe runs in a second context that bypasses the CSP,
/// with this one's cookies: the page it checks is the one a person gets.
async function accessibility(url) {
  const checker = await browser.newContext({
    bypassCSP: true,
    storageState: await context.storageState(),
    viewport: { width: 800, height: 600 },
  });
  try {
    const checked = await checker.newPage();
    await checked.goto(url);
    await checked.addScriptTag({ path: createRequire(import.meta.url).resolve('axe-core/axe.min.js') });
    const results = await checked.evaluate(() => globalThis.axe.run());
    return results.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  } finally {
    await checker.close();
  }
}

/// axe-core's serious and critical findings on the page as it is now, for a page
/// that is the answer of a form post (which a second visit to its URL would not
/// get): its HTML is checked as it is, in a context without the CSP.
async function accessibilityOfThisPage() {
  const checker = await browser.newContext({ bypassCSP: true, viewport: { width: 800, height: 600 } });
  try {
    const checked = await checker.newPage();
    await checked.setContent(await page.content());
    await checked.addScriptTag({ path: createRequire(import.meta.url).resolve('axe-core/axe.min.js') });
    const results = await checked.evaluate(() => globalThis.axe.run());
    return results.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  } finally {
    await checker.close();
  }
}

async function expectFormWithError(status, chain) {
  const post = chain[0];
  assert.equal(post.method, 'POST');
  assert.equal(post.status, status, JSON.stringify(chain));
  assert.equal(chain.length, 1, 'a refusal is no redirect');
  assert.match(post.contentType ?? '', /^text\/html/, 'a refusal is a page, not JSON');
  assert.ok(await page.locator('form input[name=password]').isVisible(), 'the form is shown again');
  return text('.error');
}

/// An RFC 6238 code (SHA-1, six digits, 30 s) of a base32 `key`, `steps` steps
/// from now: the authenticator app's side, written here so that no tessera code
/// makes the codes tessera checks.
function totp(key, steps = 0) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of key.replace(/[\s=]/g, '').toUpperCase()) {
    bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  }
  const secret = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30) + steps));
  const mac = createHmac('sha1', secret).update(counter).digest();
  const at = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(at) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

/// What the QR code on the page says, read from its pixels as a phone's camera
/// would (jsQR over a screenshot of it).
async function readQr(selector) {
  const png = PNG.sync.read(await page.locator(selector).screenshot());
  const found = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
  assert.ok(found, 'the QR code cannot be read');
  return found.data;
}

const scenarios = {
  /// Passkeys in the browser, with Chromium's virtual authenticator (the DevTools
  /// WebAuthn domain: a platform authenticator that keeps resident keys and
  /// verifies its user): add one from /account, sign in with it and no username,
  /// sign in with the password and it as the second step, remove it.
  async passkeys() {
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    await page.goto(`${tessera}/account`);
    await signIn(username, password);
    assert.equal(page.url(), `${tessera}/account`);
    await page.locator('#passkeys').scrollIntoViewIfNeeded();
    await page.fill('#passkey-name', 'This laptop');
    await page.fill('#passkey-password', password);
    await Promise.all([
      page.waitForURL((url) => url.searchParams.get('notice') === 'passkey-added'),
      page.click('#passkey-add button[type=submit]'),
    ]);
    const added = await text('.notice');
    const listed = await page.locator('#passkey-list li strong').allInnerTexts();
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    await page.locator('#passkeys').scrollIntoViewIfNeeded();
    await shot('1-added');
    const axeAccount = await accessibility(page.url());

    // Signed out, then back with the passkey alone: no username typed. First by
    // conditional UI: the browser offers the passkey in the username field's
    // autofill, and the virtual authenticator takes that offer at once.
    await submit('form[action="/account/sign-out"] button');
    await page.goto(`${tessera}/login`);
    await page.locator('h1', { hasText: 'Signed in' }).waitFor();
    const conditional = await (await page.request.get(`${tessera}/v1/session`)).json();
    await page.request.post(`${tessera}/v1/logout`, {
      headers: { 'X-CSRF-Token': conditional.csrf_token, Origin: tessera },
    });

    // Then with the button, as in a browser without conditional UI.
    await page.addInitScript(() => {
      PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);
    });
    await page.goto(`${tessera}/login`);
    const autocomplete = await page.locator('#username').getAttribute('autocomplete');
    const button = await page.locator('#passkey').innerText();
    await shot('2-sign-in');
    const axeSignIn = await accessibility(page.url());
    await page.click('#passkey');
    await page.locator('h1', { hasText: 'Signed in' }).waitFor();
    const alone = await (await page.request.get(`${tessera}/v1/session`)).json();
    const signedIn = await text('h1');
    await shot('3-signed-in');

    // The password now asks for the passkey as its second step.
    await page.request.post(`${tessera}/v1/logout`, {
      headers: { 'X-CSRF-Token': alone.csrf_token, Origin: tessera },
    });
    await page.goto(`${tessera}/account`);
    await signIn(username, password);
    const secondStepUrl = page.url();
    const codeFormShown = await page.locator('input[name=code]').count();
    await shot('4-second-step');
    const axeSecondStep = await accessibility(page.url());
    await Promise.all([
      page.waitForURL(`${tessera}/account`),
      page.click('#passkey'),
    ]);
    const twoSteps = await (await page.request.get(`${tessera}/v1/session`)).json();

    // Last used is shown; then removed.
    const lastUsed = await page.locator('#passkey-list li .muted').first().innerText();
    await submit('form[action="/account/passkeys/remove"] button');
    const removed = await text('.notice');
    const remaining = await page.locator('#passkey-list li').count();
    await page.locator('#passkeys').scrollIntoViewIfNeeded();
    await shot('5-removed');
    return {
      added,
      listed,
      resident: credentials.map((c) => c.isResidentCredential),
      conditionalAmr: conditional.session.amr,
      autocomplete,
      button,
      signedIn,
      aloneAmr: alone.session.amr,
      secondStepUrl,
      codeFormShown,
      twoStepsAmr: twoSteps.session.amr,
      lastUsed,
      removed,
      remaining,
      axe: [...axeAccount, ...axeSignIn, ...axeSecondStep],
    };
  },

  /// Two-step sign-in in the browser: set up an authenticator app from /account
  /// (the QR code read from its pixels, the key it carries used to make codes),
  /// confirm it, see the recovery codes, sign out, sign in again through the
  /// second step; every page screenshotted and checked by axe-core.
  async two_step() {
    await page.goto(`${tessera}/account`);
    await signIn(username, password);
    assert.equal(page.url(), `${tessera}/account`);
    await submit('form[action="/account/totp/begin"] button');
    await shot('1-set-up');
    const link = await readQr('.qr svg');
    const shownKey = (await text('#totp-secret')).replace(/\s/g, '');
    const key = new URL(link).searchParams.get('secret');
    const axeSetUp = await accessibility(page.url());
    await page.fill('input[name=code]', totp(key));
    await submit('form[action="/account/totp/confirm"] button');
    await shot('2-recovery-codes');
    const heading = await text('h1');
    const recoveryCodes = await page.locator('ol.codes li').allInnerTexts();
    const axeCodes = await accessibilityOfThisPage();
    await page.goto(`${tessera}/account`);
    const status = await text('#two-step + p');
    await shot('3-on');
    await submit('form[action="/account/sign-out"] button');
    await page.goto(`${tessera}/account`);
    const firstStep = await signIn(username, password);
    const secondStepUrl = page.url();
    await shot('4-second-step');
    const axeSecondStep = await accessibility(page.url());
    await page.fill('input[name=code]', totp(key, 3));
    const wrong = await submit();
    const wrongError = await text('.error');
    await shot('5-wrong-code');
    await page.fill('input[name=code]', totp(key, 1));
    const done = await submit();
    await shot('6-signed-in');
    const current = await page.request.get(`${tessera}/v1/session`);
    return {
      link,
      shownKey,
      key,
      heading,
      recoveryCodes,
      status,
      firstStepChain: firstStep.chain,
      secondStepUrl,
      wrongStatus: wrong.chain[0].status,
      wrongError,
      doneChain: done.chain,
      url: page.url(),
      amr: (await current.json()).session.amr,
      axe: [...axeSetUp, ...axeCodes, ...axeSecondStep],
    };
  },

  /// /login directly: sign in, land on the signed-in page, and the session is live.
  async direct() {
    const shown = await page.goto(`${tessera}/login`);
    assert.equal(shown.status(), 200);
    // The stylesheet applied: the CSP's hash matches the page's <style>.
    const buttonColor = await page
      .locator('button[type=submit]')
      .evaluate((button) => getComputedStyle(button).backgroundColor);
    await shot('1-form');
    const { chain } = await signIn(username, password);
    assert.equal(chain[0].origin, tessera, 'the browser sends the page’s real Origin');
    assert.equal(chain[0].status, 303);
    assert.equal(page.url(), `${tessera}/login`);
    const heading = await text('h1');
    const body = await text('main');
    await shot('2-signed-in');
    return { chain, buttonColor, heading, body, session: await session() };
  },

  /// A gateway's page, signed out: to /login with return_to, sign in, and back on
  /// the gateway's page with what its upstream answered.
  async gateway() {
    const first = await page.goto(start);
    assert.equal(first.status(), 200);
    const login = page.url();
    assert.ok(login.startsWith(`${tessera}/login?return_to=`), login);
    await shot('1-login');
    const { chain } = await signIn(username, password);
    const end = page.url();
    const heading = await text('h1').catch(() => null);
    const body = await page.locator('body').innerText();
    await shot('2-back-on-the-gateway');
    assert.equal(end, start, `the browser ended on ${end}; console: ${consoleErrors.join(' | ')}`);
    return { login, chain, end, heading, body, session: await session() };
  },

  /// "Sign in with tessera" on an app (examples/oidc-app, at `start`): to tessera's
  /// sign-in page, the consent page, back on the app signed in; then "Sign out
  /// everywhere" through tessera's end_session_endpoint and back on the app.
  async oidc_app() {
    await page.goto(start);
    await shot('1-app');
    await Promise.all([
      page.waitForNavigation({ waitUntil: 'load' }),
      page.click('text=Sign in with tessera'),
    ]);
    const login = page.url();
    assert.ok(login.startsWith(`${tessera}/login?return_to=`), login);
    await shot('2-sign-in');
    const signedIn = await signIn(username, password);
    const consentUrl = page.url();
    assert.ok(consentUrl.startsWith(`${tessera}/oauth2/authorize?`), consentUrl);
    const consentHeading = await text('h1');
    const scopes = await page.locator('ul.scopes li').allInnerTexts();
    await shot('3-consent');
    const allowed = await submit('button[name=decision][value=allow]');
    const home = page.url();
    const greeting = await text('h1');
    await shot('4-signed-in');
    const tesseraSession = await session();
    const signedOut = await submit('text=Sign out everywhere');
    const end = page.url();
    const endHeading = await text('h1');
    await shot('5-signed-out');
    return {
      login,
      signInChain: signedIn.chain,
      consentHeading,
      scopes,
      consentChain: allowed.chain,
      home,
      greeting,
      tesseraSession,
      signOutChain: signedOut.chain,
      end,
      endHeading,
      session: await session(),
    };
  },

  /// /account: sign in, see this session and the other one (`other`, a phone's),
  /// sign the other out, and see it gone; axe-core checks the page each time.
  async account() {
    await page.goto(`${tessera}/account`);
    assert.ok(page.url().startsWith(`${tessera}/login?return_to=`), page.url());
    await signIn(username, password);
    assert.equal(page.url(), `${tessera}/account`);
    const before = await page.locator('ul.items li').allInnerTexts();
    const current = await text('.badge');
    await shot('1-two-sessions');
    const axeBefore = await accessibility(page.url());
    const signedOut = await submit(`button[aria-label="Sign out ${config.other}"]`);
    const notice = await text('.notice');
    const after = await page.locator('ul.items li').allInnerTexts();
    await shot('2-the-other-signed-out');
    // On a phone: the page reflows to the screen's width, nothing wider.
    await page.setViewportSize({ width: 375, height: 740 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await shot('3-on-a-phone');
    const axeAfter = await accessibility(page.url());
    return {
      before,
      current,
      signOutChain: signedOut.chain,
      notice,
      after,
      overflow,
      axe: [...axeBefore, ...axeAfter],
      session: await session(),
    };
  },

  /// /admin as an administrator: the online count, kick `other` (who is signed in)
  /// and watch the count drop, rotate a key, and read the events these left; each
  /// page screenshotted and checked by axe-core.
  async console() {
    await page.goto(`${tessera}/admin`);
    assert.ok(page.url().startsWith(`${tessera}/login?return_to=`), page.url());
    await signIn(username, password);
    assert.equal(page.url(), `${tessera}/admin`);
    const axe = [];
    const online = async () => Number(await text('#online-users'));
    // Sightings are written a moment after each sign-in.
    let before = await online();
    for (let i = 0; i < 50 && before < 2; i++) {
      await page.waitForTimeout(100);
      await page.reload();
      before = await online();
    }
    await shot('1-dashboard');
    axe.push(...(await accessibility(page.url())));

    await page.click('text=Users');
    await page.fill('input[name=q]', config.other);
    await submit();
    await shot('2-users');
    axe.push(...(await accessibility(page.url())));
    await Promise.all([page.waitForNavigation(), page.click(`text=${config.other}`)]);
    await shot('3-user');
    axe.push(...(await accessibility(page.url())));
    const kicked = await submit('text=Kick (end every session)');
    const kickNotice = await text('.notice');
    await shot('4-kicked');

    // A reset link for the kicked user, and the person using it.
    const userPage = page.url();
    await submit('text=Issue a password-reset link');
    const resetLink = await page.inputValue('#reset-link');
    // Not checked by axe: it reloads the address, and this page answers a form.
    await shot('4a-reset-link');
    await page.goto(resetLink.replace(/^https?:\/\/[^/]+/, tessera));
    await shot('4b-reset-form');
    axe.push(...(await accessibility(page.url())));
    await page.fill('input[name=password]', 'a brand new passphrase');
    await page.fill('input[name=confirm]', 'a brand new passphrase');
    const reset = await submit('text=Set password');
    const resetDone = await text('h1');
    await shot('4c-reset-done');
    await page.goto(userPage);

    await page.click('text=Dashboard');
    const after = await online();
    await shot('5-dashboard-after');

    await page.click('text=Keys');
    const keysBefore = await page.locator('ul.items li').count();
    await page.selectOption('select[name=alg]', 'ES256');
    const rotated = await submit('text=Rotate');
    const keysAfter = await page.locator('ul.items li').count();
    await shot('6-keys');
    axe.push(...(await accessibility(page.url())));

    // Register an app; its secret is shown once.
    await page.click('text=Clients');
    await page.fill('input[name=name]', 'shop');
    await page.check('input[name=grant_authorization_code]');
    await page.check('input[name=grant_refresh_token]');
    await page.fill('input[name=scope]', 'openid profile');
    await page.fill('textarea[name=redirect_uris]', 'https://shop.example/callback');
    const added = await submit('text=Add client');
    const clientSecret = await page.inputValue('#client-secret');
    await shot('6a-client-added');
    await page.click('text=Back to the clients');
    const clients = await page.locator('ul.items li').count();
    await shot('6b-clients');
    axe.push(...(await accessibility(page.url())));

    await page.click('text=Events');
    const kinds = await page.locator('tbody tr td:nth-child(2)').allInnerTexts();
    await shot('7-events');
    axe.push(...(await accessibility(page.url())));
    // On a phone.
    await page.setViewportSize({ width: 375, height: 740 });
    await page.click('text=Dashboard');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await shot('8-dashboard-on-a-phone');
    return {
      before,
      after,
      kickChain: kicked.chain,
      kickNotice,
      rotateChain: rotated.chain,
      resetLink,
      resetChain: reset.chain,
      resetDone,
      addChain: added.chain,
      clientSecret,
      clients,
      keysBefore,
      keysAfter,
      kinds,
      overflow,
      axe,
    };
  },

  /// The wrong password: the form again with the reason, and no session.
  async wrong_password() {
    await page.goto(`${tessera}/login`);
    const { chain } = await signIn(username, `${password} (not)`);
    const error = await expectFormWithError(401, chain);
    const keptUsername = await page.inputValue('input[name=username]');
    await shot('1-refused');
    return { chain, error, keptUsername, session: await session() };
  },

  /// A form on another origin posting to /login (a login CSRF), then one from an
  /// opaque origin (a page with no origin of its own sends `Origin: null`): both get
  /// the refusal page, and no session.
  async foreign() {
    await page.goto(start);
    await shot('1-foreign-page');
    const foreign = await submit();
    const foreignError = await expectFormWithError(403, foreign.chain);
    await shot('2-refused');
    const afterForeign = await session();

    await page.goto('about:blank');
    await page.setContent(
      `<form method="post" action="${tessera}/login">
         <input name="username" value="${username}"><input name="password" value="${password}">
         <button type="submit">Sign in</button></form>`,
    );
    const opaque = await submit();
    const opaqueError = await expectFormWithError(403, opaque.chain);
    await shot('3-opaque-refused');
    return {
      foreign: { chain: foreign.chain, error: foreignError, session: afterForeign },
      opaque: { chain: opaque.chain, error: opaqueError },
      session: await session(),
    };
  },
};

let exitCode = 0;
try {
  const run = scenarios[scenario];
  assert.ok(run, `unknown scenario ${scenario}; one of ${Object.keys(scenarios).join(', ')}`);
  const seen = await run();
  const cspViolations = consoleErrors.filter((e) => e.includes('Content Security Policy'));
  console.log(JSON.stringify({ scenario, url: page.url(), consoleErrors, cspViolations, ...seen }));
} catch (error) {
  exitCode = 1;
  console.error(`${scenario} failed at ${page.url()}: ${error.stack ?? error}`);
  if (consoleErrors.length) console.error(`console errors: ${consoleErrors.join(' | ')}`);
  await shot('failure').catch(() => {});
} finally {
  await browser.close();
  clearTimeout(watchdog);
}
process.exit(exitCode);
