// Helpers for driving real VS Code (code-server) in headless Chromium with playwright-core.
// Everything listens on and talks to 127.0.0.1 only; every process started here runs in its own
// process group and is stopped by that group's id.

import { spawn, execFile } from 'node:child_process';
import { mkdirSync, writeFileSync, createWriteStream, existsSync, readdirSync, cpSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = join(HERE, '..', '..');
const CODE_SERVER = join(HERE, 'node_modules', 'code-server', 'out', 'node', 'entry.js');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const started = Date.now();
export function log(...args) {
  console.log(`[test-ide ${((Date.now() - started) / 1000).toFixed(1)}s]`, ...args);
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Runs a command to completion; resolves with stdout, rejects with its stderr's tail. */
export function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 64 << 20, timeout: 300_000, ...opts }, (err, stdout, stderr) => {
      if (err) {
        err.message = `${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`.trim();
        reject(err);
      } else {
        resolve(stdout);
      }
    });
  });
}

export async function until(what, fn, timeoutMs, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const got = await fn();
      if (got) return got;
    } catch (err) {
      if (err.fatal) throw err;
      last = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/**
 * code-server on 127.0.0.1:PORT in a fresh user-data-dir and extensions-dir, with the extension(s)
 * installed from .vsix files first. Returns { url, port, userDataDir, extensionsDir, logFile, stop }.
 */
export async function startCodeServer({ root, folder, vsixes = [], settings = {}, env = {}, logFile }) {
  const userDataDir = join(root, 'code-server-data');
  const extensionsDir = join(root, 'code-server-extensions');
  const xdg = join(root, 'xdg');
  const configFile = join(root, 'code-server.yaml');
  for (const d of [userDataDir, extensionsDir, join(userDataDir, 'User'), join(userDataDir, 'Machine'), join(xdg, 'config'), join(xdg, 'data')]) {
    mkdirSync(d, { recursive: true });
  }
  writeFileSync(configFile, 'auth: none\n');
  // The same settings as user settings and as the "remote" (machine) settings: code-server's
  // workbench is a remote window, where settings of scope machine or machine-overridable (like
  // nhdev.path) are read from Machine/settings.json only.
  writeFileSync(join(userDataDir, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
  writeFileSync(join(userDataDir, 'Machine', 'settings.json'), JSON.stringify(settings, null, 2));
  const fullEnv = {
    ...process.env,
    ...env,
    // Keep code-server's own files (config, logs) out of $HOME.
    XDG_CONFIG_HOME: join(xdg, 'config'),
    XDG_DATA_HOME: join(xdg, 'data'),
    // No marketplace: nothing to fetch from outside this machine.
    EXTENSIONS_GALLERY: JSON.stringify({ serviceUrl: 'http://127.0.0.1:9/gallery', itemUrl: 'http://127.0.0.1:9/item' }),
  };
  const common = ['--config', configFile, '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];
  for (const vsix of vsixes) {
    const out = await run(process.execPath, [CODE_SERVER, ...common, '--force', '--install-extension', vsix],
      { env: fullEnv, timeout: 120_000 });
    log(`installed ${vsix}: ${out.trim().split('\n').pop()}`);
  }
  const port = await freePort();
  const out = createWriteStream(logFile);
  const child = spawn(process.execPath, [CODE_SERVER, ...common,
    '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', '--disable-update-check',
    '--disable-workspace-trust', '--disable-getting-started-override', folder],
  { env: fullEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });
  const url = `http://127.0.0.1:${port}`;
  await until('code-server to listen', async () => {
    if (exited) throw new Error(`code-server exited (${JSON.stringify(exited)}); see ${logFile}`);
    const res = await fetch(`${url}/healthz`).catch(() => null);
    return res && res.ok;
  }, 60_000);
  log(`code-server ${url} (pid ${child.pid})`);
  const stop = async () => {
    if (exited) return;
    try { process.kill(-child.pid, 'SIGTERM'); } catch { return; }
    for (let i = 0; i < 40 && !exited; i++) await sleep(250);
    if (!exited) { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }
  };
  return { url, port, userDataDir, extensionsDir, logFile, stop, pid: child.pid };
}

/** Headless Debian Chromium with a fresh profile; requests to anything but loopback are refused. */
export async function launchBrowser(root) {
  const profile = join(root, 'chromium-profile');
  mkdirSync(profile, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.NHDEV_IDE_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1600, height: 1000 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
  const blocked = new Set();
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol) && !['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) {
      if (!blocked.has(u.host)) { blocked.add(u.host); log(`browser: refused a request to ${u.host}`); }
      return route.abort('blockedbyclient');
    }
    return route.continue();
  });
  return context;
}

/** A VS Code workbench page with helpers for what a person does with keyboard and mouse. */
export class Workbench {
  constructor(page, artifacts) {
    this.page = page;
    this.artifacts = artifacts;
    this.shots = [];
    this.consoleErrors = [];
    page.on('console', (m) => { if (m.type() === 'error') this.consoleErrors.push(m.text()); });
  }

  async open(url, folder) {
    await this.page.goto(`${url}/?folder=${encodeURIComponent(folder)}`);
    await this.page.locator('.monaco-workbench .part.editor').waitFor({ timeout: 90_000 });
    await this.page.locator('.statusbar').waitFor({ timeout: 30_000 });
    await sleep(1500);
  }

  async shot(name) {
    const path = join(this.artifacts, `${name}.png`);
    await this.page.screenshot({ path });
    this.shots.push(path);
    log(`screenshot ${path}`);
    return path;
  }

  /**
   * Throws with the text of a modal dialog or an error notification, if VS Code shows one: the
   * extension's errors reach the user that way (e.g. "spawn nhdev ENOENT" when it cannot run nhdev).
   */
  async failOnError() {
    const dialog = this.page.locator('.monaco-dialog-box');
    if (await dialog.isVisible().catch(() => false)) {
      const text = (await dialog.innerText().catch(() => '')) || '';
      throw new Error(`VS Code shows a dialog: ${text.replace(/\s+/g, ' ').trim()}`);
    }
    const errors = this.page.locator('.notification-toast .codicon-error ~ .notification-list-item-message, .notifications-toasts .notification-list-item:has(.codicon-error) .notification-list-item-message');
    if (await errors.count().catch(() => 0)) {
      throw new Error(`VS Code shows an error notification: ${(await errors.first().textContent()).trim()}`);
    }
  }

  /** The notification toasts on screen: [{ severity: 'error' | 'warning' | 'info', text }]. */
  async toasts() {
    return this.page.locator('.notifications-toasts .notification-list-item').evaluateAll((items) => items.map((el) => ({
      severity: el.querySelector('.codicon-error') ? 'error' : el.querySelector('.codicon-warning') ? 'warning' : 'info',
      text: (el.querySelector('.notification-list-item-message')?.textContent || '').trim(),
    }))).catch(() => []);
  }

  /** Like until(), but stops at once when VS Code shows an error dialog or notification. */
  async until(what, fn, timeoutMs, intervalMs = 250) {
    let uiError = null;
    const got = await until(what, async () => {
      try { await this.failOnError(); } catch (err) { uiError = err; return true; }
      return fn();
    }, timeoutMs, intervalMs);
    if (uiError) throw uiError;
    return got;
  }

  async press(keys) {
    await this.page.keyboard.press(keys);
  }

  /** Runs a command by its title through the command palette (F1). */
  async command(title) {
    await this.page.keyboard.press('Escape');
    await this.page.keyboard.press('F1');
    const input = this.page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(`>${title}`);
    const row = this.page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
    await row.waitFor({ timeout: 10_000 });
    await input.press('Enter');
    await this.page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 10_000 }).catch(() => {});
  }

  async clearNotifications() {
    await this.command('Notifications: Clear All Notifications').catch(() => {});
  }

  /** Opens a file of the workspace through Quick Open (Ctrl+P) and waits for its editor. */
  async openFile(name) {
    await this.page.keyboard.press('Escape');
    await this.page.keyboard.press('Control+P');
    const input = this.page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(name);
    await this.page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().waitFor({ timeout: 20_000 });
    await input.press('Enter');
    await this.page.locator(`.tabs-container .tab.active[data-resource-name="${name}"]`).waitFor({ timeout: 20_000 });
    await this.editor().locator('.view-lines').waitFor({ timeout: 20_000 });
  }

  editor() {
    return this.page.locator('.editor-group-container.active .monaco-editor').first();
  }

  async focusEditor() {
    await this.command('View: Focus Active Editor Group');
  }

  /** Ctrl+G: moves the cursor to LINE of the active editor. */
  async goToLine(line) {
    await this.focusEditor();
    await this.page.keyboard.press('Control+G');
    const input = this.page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await input.fill(`:${line}`);
    await input.press('Enter');
    await until(`the cursor on line ${line}`, async () => (await this.cursorLine()) === line, 10_000);
  }

  /** The cursor's line, read from the status bar ("Ln 12, Col 9"). */
  async cursorLine() {
    const text = await this.page.locator('.statusbar-item[id$="status.editor.selection"]').first().textContent();
    const m = /Ln (\d+)/.exec(text || '');
    return m ? Number(m[1]) : null;
  }

  /**
   * The editor line numbers that elements matching SELECTOR (a line decoration or a glyph) sit on,
   * matched by their vertical position against the line-number gutter.
   */
  async linesOf(selector) {
    return this.editor().evaluate((ed, sel) => {
      const numbers = [...ed.querySelectorAll('.margin-view-overlays .line-numbers')]
        .map((el) => ({ top: el.getBoundingClientRect().top, line: Number(el.textContent.trim()) }));
      return [...ed.querySelectorAll(sel)].map((el) => {
        const top = el.getBoundingClientRect().top;
        const hit = numbers.find((n) => Math.abs(n.top - top) < 4);
        return hit ? hit.line : null;
      }).filter((l) => l !== null);
    }, selector);
  }

  async breakpointLines() {
    return this.linesOf('.codicon-debug-breakpoint, .codicon-debug-breakpoint-unverified');
  }

  /** The line of the yellow "top stack frame" decoration while paused, or null. */
  async topFrameLine() {
    const lines = await this.linesOf('.debug-top-stack-frame-line');
    return lines.length ? lines[0] : null;
  }

  /**
   * Whether a debug session is attached and running: the debug toolbar is up, the Call Stack view's
   * header says "Running", and the adapter's exception filters are listed in the Breakpoints view
   * (they come from its answer to "initialize").
   */
  async debugRunning() {
    const toolbar = await this.page.locator('.debug-toolbar').isVisible().catch(() => false);
    const header = await this.page.locator('.pane-header', { hasText: 'Call Stack' }).first().textContent().catch(() => '');
    const filters = await this.page.locator('.debug-breakpoints .exception').count().catch(() => 0);
    return toolbar && /Running/.test(header || '') && filters > 0;
  }

  /** The text of the Call Stack view's rows (threads, frames; "Paused on breakpoint" etc.). */
  async callStack() {
    return this.page.locator('.debug-call-stack .monaco-list-row').allTextContents().catch(() => []);
  }
}

/** The extension host's log files (newest session first) under a user-data-dir. */
export function extHostLogs(userDataDir) {
  const logs = join(userDataDir, 'logs');
  if (!existsSync(logs)) return [];
  const found = [];
  for (const session of readdirSync(logs).sort().reverse()) {
    for (const host of existsSync(join(logs, session)) ? readdirSync(join(logs, session)) : []) {
      const f = join(logs, session, host, 'remoteexthost.log');
      if (host.startsWith('exthost') && existsSync(f)) found.push(f);
    }
  }
  return found;
}

/**
 * The text of the extension's output channels whose name matches NAME_RE (e.g. /^\d+-nhdev\.log$/),
 * as the extension host writes them under <user-data-dir>/logs/.../output_logging_*\/, all joined.
 */
export function outputChannelText(userDataDir, nameRe) {
  let text = '';
  for (const hostLog of extHostLogs(userDataDir)) {
    const host = dirname(hostLog);
    for (const dir of readdirSync(host).filter((d) => d.startsWith('output_logging_'))) {
      for (const f of readdirSync(join(host, dir)).filter((n) => nameRe.test(n))) {
        text += readFileSync(join(host, dir, f), 'utf8');
      }
    }
  }
  return text;
}

/**
 * Waits until the extension host has activated an extension whose id matches ID_RE; throws with
 * the host's error when its activation failed.
 */
export async function waitExtensionActivated(userDataDir, idRe, timeoutMs) {
  let seenAt = null;
  return until('the extension to activate (extension host log)', async () => {
    for (const f of extHostLogs(userDataDir)) {
      const text = readFileSync(f, 'utf8');
      const failed = text.split('\n').findIndex((l) => /Activating extension (\S+) failed/.test(l) && idRe.test(l));
      if (failed >= 0) {
        const lines = text.split('\n').slice(failed, failed + 3).join(' / ');
        throw Object.assign(new Error(`the extension failed to activate: ${lines} (log: ${f})`), { fatal: true });
      }
      const m = text.split('\n').find((l) => l.includes('_doActivateExtension') && idRe.test(l));
      // A failure is logged after the activation starts: give it a moment to show.
      if (m && seenAt === null) seenAt = Date.now();
      if (m && Date.now() - seenAt > 2000) return m.replace(/^.*_doActivateExtension /, '');
    }
    return null;
  }, timeoutMs, 500);
}

/** Copies whatever exists of SOURCES (files or folders) into DEST. */
export function collect(dest, sources) {
  mkdirSync(dest, { recursive: true });
  for (const [name, src] of Object.entries(sources)) {
    if (src && existsSync(src)) cpSync(src, join(dest, name), { recursive: true });
  }
}

export function newestVsix(dir) {
  if (!existsSync(dir)) return null;
  const found = readdirSync(dir).filter((f) => /^nhdev-.*\.vsix$/.test(f)).sort();
  return found.length ? join(dir, found[found.length - 1]) : null;
}

// The 1-based line of `file`'s `source` holding `needle`.
export function lineOf(source, needle, file) {
  const i = source.split('\n').findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`${file} has no line with ${needle}`);
  return i + 1;
}

// A test step: logged with its time, and a failure names it. `prefix` tells the test files apart.
export function stepper(prefix = '') {
  return async (title, fn) => {
    const began = Date.now();
    const took = () => `(${((Date.now() - began) / 1000).toFixed(1)}s)`;
    log(`${prefix}step: ${title}`);
    try {
      await fn();
    } catch (err) {
      log(`${prefix}✗ ${title} ${took()}`);
      err.message = `${title}: ${err.message}`;
      throw err;
    }
    log(`${prefix}✓ ${title} ${took()}`);
  };
}

// User settings for a quiet, offline workbench: no welcome page, trust prompt, telemetry, updates,
// recommendations, AI features, git, port auto-forwarding (it logged ECONNRESET when dev mode
// ended) or autosave (the tests save with Ctrl+S themselves).
export const QUIET_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'security.workspace.trust.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'chat.disableAIFeatures': true,
  'git.enabled': false,
  'remote.autoForwardPorts': false,
  'debug.toolBarLocation': 'floating',
  'debug.internalConsoleOptions': 'neverOpen',
  'files.autoSave': 'off',
};
