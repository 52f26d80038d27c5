// The nhdev extension in real VS Code, Go edition: code-server with the packaged .vsix (and no Go
// extension), driven in headless Chromium. Opens a copy of examples/go-http (deployed to the
// sandbox), sets a breakpoint in main.go's handler with F9, starts the "nhdev: debug greeter-go"
// launch configuration with F5 (the extension's DebugAdapterServer to dlv in the dev container),
// sends an HTTP request to the forwarded port, sees VS Code stop on the breakpoint, continues (F5)
// and gets the HTTP answer; Shift+F5 ends debugging. Screenshots and logs go to artifacts/go/.
//
// Skipped when go or dlv is not on PATH: the sandbox's dev-go stand-in runs the host's tools
// (Debian packages golang-go and delve). Same environment as debug-python.test.mjs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants, cpSync, mkdtempSync, readFileSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, delimiter } from 'node:path';
import {
  HERE, REPO, log, run, until, sleep, startCodeServer, launchBrowser, Workbench, collect, newestVsix,
  waitExtensionActivated, lineOf, stepper, QUIET_SETTINGS,
} from '../lib.mjs';

const EXAMPLE = join(REPO, 'examples', 'go-http');
const WORKLOAD = 'deployment/greeter-go';
const CONFIG_NAME = 'nhdev: debug greeter-go';
const NAMESPACE = 'default';

const kubeconfig = process.env.NHDEV_IDE_KUBECONFIG;
const vsix = process.env.NHDEV_IDE_VSIX || newestVsix(join(REPO, 'vscode_extension'));
const nhdevBin = process.env.NHDEV_BIN || join(REPO, '.venv', 'bin', 'nhdev');
const artifacts = join(process.env.NHDEV_IDE_ARTIFACTS || join(HERE, 'artifacts'), 'go');
const python = join(dirname(nhdevBin), 'python');

// Where the sandbox's stand-in images find their tools (nhdev.sandbox.images.HOST_PATH), and PATH.
const HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
function onPath(tool) {
  return `${process.env.PATH || ''}${delimiter}${HOST_PATH}`.split(delimiter).filter(Boolean).some((d) => {
    try { accessSync(join(d, tool), constants.X_OK); return true; } catch { return false; }
  });
}
const missing = ['go', 'dlv'].filter((tool) => !onPath(tool));

const step = stepper('[go] ');

test('debug the Go example in VS Code (dlv, no Go extension): breakpoint, continue, stop', { timeout: 900_000 }, async (t) => {
  if (missing.length) {
    t.skip(`${missing.join(' and ')} not on PATH: the sandbox's dev-go stand-in runs the host's go and dlv `
      + '(Debian packages golang-go and delve: `make deps` as root)');
    return;
  }
  assert.ok(kubeconfig && existsSync(kubeconfig), 'NHDEV_IDE_KUBECONFIG must name the sandbox kubeconfig');
  assert.ok(vsix && existsSync(vsix), `no extension package (.vsix) found: ${vsix}`);
  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });
  const root = mkdtempSync(join(tmpdir(), 'nhdev-test-ide-go-'));
  const workspace = join(root, 'go-http');
  cpSync(EXAMPLE, workspace, { recursive: true });
  const source = readFileSync(join(workspace, 'main.go'), 'utf8');
  const breakLine = lineOf(source, 'fmt.Fprintf(w', 'main.go');
  const env = {
    KUBECONFIG: kubeconfig,
    PATH: `${dirname(nhdevBin)}:${process.env.PATH}`,
  };
  const nhdev = (...args) => run(nhdevBin, args, { cwd: workspace, env: { ...process.env, ...env } });
  const devStatus = async () => JSON.parse(await nhdev('dev', 'status', WORKLOAD, '-o', 'json'));
  // Attached: the debug toolbar is up and the Call Stack view lists dlv's goroutines or says "Running".
  const attached = async () => {
    const toolbar = await wb.page.locator('.debug-toolbar').isVisible().catch(() => false);
    const header = await wb.page.locator('.pane-header', { hasText: 'Call Stack' }).first().textContent().catch(() => '');
    return toolbar && (/Running/.test(header || '') || (await wb.callStack()).length > 0);
  };

  let codeServer;
  let browser;
  let wb;
  let sessionLog;
  let pressedF5 = false;
  const cleanup = [];
  try {
    log(`[go] deploying ${EXAMPLE} to the sandbox`);
    // Running is enough: dev mode replaces the pod, and the production app would compile first.
    const pod = (await run(python, [join(HERE, 'deploy_example.py'), kubeconfig, workspace, NAMESPACE, 'greeter-go', 'running'])).trim();
    log(`[go] greeter-go running: pod ${pod}`);

    codeServer = await startCodeServer({
      root,
      folder: workspace,
      vsixes: [vsix],
      env,
      logFile: join(artifacts, 'code-server.log'),
      settings: {
        ...QUIET_SETTINGS,
        'nhdev.path': nhdevBin,
      },
    });
    cleanup.push(() => codeServer.stop());

    browser = await launchBrowser(root);
    cleanup.push(() => browser.close());
    const page = browser.pages()[0] || await browser.newPage();
    wb = new Workbench(page, artifacts);
    await wb.open(codeServer.url, workspace);
    await wb.clearNotifications();

    await step('the extension activates', async () => {
      log(`[go] activated: ${await waitExtensionActivated(codeServer.userDataDir, /nhdev/, 60_000)}`);
    });

    await step(`F9 sets a breakpoint in main.go's handler (line ${breakLine})`, async () => {
      await wb.command('View: Show Explorer');
      await wb.openFile('main.go');
      await wb.goToLine(breakLine);
      await wb.press('F9');
      await until(`a breakpoint glyph on line ${breakLine}`, async () => (await wb.breakpointLines()).includes(breakLine), 10_000)
        .catch((err) => {
          err.message += ' (VS Code sets breakpoints only in languages that an installed debugger declares in'
            + ' contributes.breakpoints: does the extension declare go?)';
          throw err;
        });
      await wb.shot('01-breakpoint-set');
    });

    await step(`the Run and Debug view offers "${CONFIG_NAME}"`, async () => {
      await wb.command('View: Show Run and Debug');
      const picker = page.locator('.start-debug-action-item-label').first();
      await picker.waitFor({ timeout: 20_000 });
      await until(`"${CONFIG_NAME}" selected in the launch configuration picker`,
        async () => (await picker.textContent())?.includes(CONFIG_NAME), 20_000);
    });

    let forward;
    await step('F5 starts dev mode, dlv builds the app and VS Code attaches', async () => {
      await wb.focusEditor();
      pressedF5 = true;
      await wb.press('F5');
      const status = await wb.until('dev mode with its session and forward', async () => {
        const st = await devStatus();
        const fwd = st.localSession?.forwards?.find((f) => f.active);
        return st.inDevMode && st.localSession?.tunnel?.state === 'connected' && fwd ? st : null;
      }, 240_000, 1000);
      forward = status.localSession.forwards.find((f) => f.active).local;
      sessionLog = status.localSession.log;
      log(`[go] dev mode on, session pid ${status.localSession.pid}, forward ${forward}`);
      // The first `dlv debug` compiles net/http without optimizations: 10-45 s on a busy machine.
      await wb.until('the debugger attached (debug toolbar, Call Stack)', attached, 300_000, 500);
      await sleep(1000);
      log(`[go] call stack: ${JSON.stringify(await wb.callStack())}`);
      await wb.shot('02-attached');
    });

    let answer;
    await step('an HTTP request stops on the breakpoint', async () => {
      const url = `http://${forward}/`;
      log(`[go] GET ${url}`);
      answer = until('the app to answer', () => fetch(url, { signal: AbortSignal.timeout(300_000) })
        .then(async (r) => ({ status: r.status, body: await r.text() })), 120_000, 1000);
      answer.catch(() => {});
      const line = await wb.until('the debugger to pause (the yellow top-stack-frame line)', () => wb.topFrameLine(), 120_000);
      assert.equal(line, breakLine, `paused on line ${line}, not on the breakpoint's line ${breakLine}`);
      const active = await page.locator('.tabs-container .tab.active').getAttribute('data-resource-name');
      assert.equal(active, 'main.go', `paused in ${active}, not main.go`);
      const stack = (await wb.callStack()).join(' | ');
      log(`[go] paused: ${stack}`);
      assert.match(stack, /Paused on breakpoint/i);
      await wb.shot('03-paused-on-breakpoint');
      const pending = await Promise.race([answer.then(() => 'answered'), sleep(500).then(() => 'pending')]);
      assert.equal(pending, 'pending', 'the HTTP request was answered although the app is paused');
    });

    await step('F5 continues and the HTTP request completes', async () => {
      await wb.press('F5');
      const res = await answer;
      log(`[go] HTTP ${res.status}: ${res.body.trim()}`);
      assert.equal(res.status, 200);
      assert.match(res.body, /Hello from nhdev's Go example/);
      await wb.until('the yellow line to go away', async () => (await wb.topFrameLine()) === null, 20_000);
      await wb.shot('04-continued');
    });

    await step('F9 removes the breakpoint (dlv keeps a disconnected client\'s) and Shift+F5 stops debugging', async () => {
      await wb.goToLine(breakLine);
      await wb.press('F9');
      await until(`no breakpoint glyph on line ${breakLine}`, async () => !(await wb.breakpointLines()).includes(breakLine), 10_000);
      await sleep(500);
      await wb.press('Shift+F5');
      await wb.until('the debug session to end (no Call Stack rows, no debug toolbar)', async () =>
        (await wb.callStack()).length === 0 && !(await page.locator('.debug-toolbar').isVisible().catch(() => false)), 30_000);
      await wb.shot('05-stopped');
    });
  } catch (err) {
    if (wb) await wb.shot('failure').catch(() => {});
    throw err;
  } finally {
    if (wb && wb.consoleErrors.length) log(`[go] browser console errors: ${wb.consoleErrors.length} (first: ${wb.consoleErrors[0].slice(0, 300)})`);
    for (const fn of cleanup.reverse()) await fn().catch((e) => log(`[go] cleanup: ${e.message}`));
    if (pressedF5) await nhdev('dev', 'end', WORKLOAD).then(() => log('[go] dev mode ended')).catch((e) => log(`[go] nhdev dev end: ${e.message.split('\n')[0]}`));
    collect(join(artifacts, 'logs'), {
      'vscode': codeServer && join(codeServer.userDataDir, 'logs'),
      'nhdev-session.log': sessionLog,
    });
    if (process.env.NHDEV_IDE_KEEP === '1') log(`[go] kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
    log(`[go] artifacts: ${artifacts}`);
  }
});
