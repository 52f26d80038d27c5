// The nhdev extension in real VS Code: code-server with the packaged .vsix, driven in headless
// Chromium as a person would. Opens a copy of examples/python-http (deployed to the sandbox), sets a
// breakpoint in app.py with F9, starts the "nhdev: debug greeter" launch configuration with F5,
// sends an HTTP request to the forwarded port, sees VS Code stop on the breakpoint, steps over
// (F10), continues (F5) and gets the HTTP answer. Then hot reload: edits GREETING in app.py in the
// editor and saves it (Ctrl+S); the session syncs it and restarts the debug command, the extension
// re-attaches VS Code by itself, and the next request stops on the breakpoint again and answers
// with the edited greeting. Shift+F5 ends debugging and stops the debug command in the pod.
// Screenshots and logs go to artifacts/.
//
// Run by scripts/test-ide, which starts the sandbox and sets:
//   NHDEV_IDE_KUBECONFIG  the sandbox's kubeconfig (required)
//   NHDEV_IDE_VSIX        the extension package (default: the newest vscode_extension/nhdev-*.vsix)
//   NHDEV_BIN             the nhdev CLI (default: the repo's .venv/bin/nhdev)
//   NHDEV_IDE_ARTIFACTS   where screenshots and logs go (default: test-ide/artifacts)
//   NHDEV_IDE_KEEP=1      keep the temporary directory (workspace, code-server's data) afterwards

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join, dirname } from 'node:path';
import {
  HERE, REPO, log, run, until, sleep, startCodeServer, launchBrowser, Workbench, collect, newestVsix,
  waitExtensionActivated, lineOf, stepper, QUIET_SETTINGS, outputChannelText,
} from '../lib.mjs';

const EXAMPLE = join(REPO, 'examples', 'python-http');
const WORKLOAD = 'deployment/greeter';
const CONFIG_NAME = 'nhdev: debug greeter';
const NAMESPACE = 'default';

const kubeconfig = process.env.NHDEV_IDE_KUBECONFIG;
const vsix = process.env.NHDEV_IDE_VSIX || newestVsix(join(REPO, 'vscode_extension'));
const nhdevBin = process.env.NHDEV_BIN || join(REPO, '.venv', 'bin', 'nhdev');
const artifacts = process.env.NHDEV_IDE_ARTIFACTS || join(HERE, 'artifacts');
const python = join(dirname(nhdevBin), 'python');

const step = stepper('');

test('debug the Python example in VS Code: breakpoint, step over, continue, hot reload re-attach', { timeout: 900_000 }, async () => {
  assert.ok(kubeconfig && existsSync(kubeconfig), 'NHDEV_IDE_KUBECONFIG must name the sandbox kubeconfig');
  assert.ok(vsix && existsSync(vsix), `no extension package (.vsix) found: ${vsix}`);
  // artifacts/go/ is debug-go.test.mjs's.
  for (const f of existsSync(artifacts) ? readdirSync(artifacts) : []) {
    if (f !== 'go') rmSync(join(artifacts, f), { recursive: true, force: true });
  }
  mkdirSync(artifacts, { recursive: true });
  const root = mkdtempSync(join(tmpdir(), 'nhdev-test-ide-'));
  const workspace = join(root, 'python-http');
  cpSync(EXAMPLE, workspace, { recursive: true });
  const source = readFileSync(join(workspace, 'app.py'), 'utf8');
  const breakLine = lineOf(source, 'body = f"', 'app.py');
  const nextLine = lineOf(source, 'self.send_response(200)', 'app.py');
  const greetingLine = lineOf(source, 'GREETING = "', 'app.py');
  const EDIT = ' - edited in VS Code';
  const editedGreeting = `${/GREETING = "([^"]*)"/.exec(source)[1]}${EDIT}`;
  // For code-server and, through it, the extension host (which takes PATH from the login shell
  // instead; the extension finds nhdev through the nhdev.path setting).
  const env = {
    KUBECONFIG: kubeconfig,
    PATH: `${dirname(nhdevBin)}:${process.env.PATH}`,
  };
  const nhdev = (...args) => run(nhdevBin, args, { cwd: workspace, env: { ...process.env, ...env } });
  const devStatus = async () => JSON.parse(await nhdev('dev', 'status', WORKLOAD, '-o', 'json'));
  // The run service of the session (services.run): debug command, hot reload count.
  const runService = (st) => st.localSession?.services?.run ?? {};
  // The command lines of the dev container's processes (/proc: the image may have no ps); nhdev dev
  // exec passes its command as is, no shell quoting involved.
  const podProcesses = async () => (await nhdev('dev', 'exec', WORKLOAD, '--', 'sh', '-c',
    'for p in /proc/[0-9]*; do [ -r $p/cmdline ] && tr "\\0" " " < $p/cmdline && echo; done'))
    .split('\n').map((l) => l.trim()).filter(Boolean);
  // The extension's own output channel ("nhdev"), where it logs each attach and re-attach.
  const extensionLog = () => outputChannelText(codeServer.userDataDir, /^\d+-nhdev\.log$/);

  let codeServer;
  let browser;
  let wb;
  let sessionLog;
  let pressedF5 = false;
  const cleanup = [];
  try {
    log(`deploying ${EXAMPLE} to the sandbox`);
    const pod = (await run(python, [join(HERE, 'deploy_example.py'), kubeconfig, workspace, NAMESPACE, 'greeter'])).trim();
    log(`greeter ready: pod ${pod}`);

    codeServer = await startCodeServer({
      root,
      folder: workspace,
      vsixes: [vsix],
      env,
      logFile: join(artifacts, 'code-server.log'),
      settings: {
        ...QUIET_SETTINGS,
        'nhdev.path': nhdevBin,
        // Only for diagnosing: lets F9 work even where no installed debugger declares the language.
        ...(process.env.NHDEV_IDE_ALLOW_BREAKPOINTS_EVERYWHERE === '1' ? { 'debug.allowBreakpointsEverywhere': true } : {}),
      },
    });
    cleanup.push(() => codeServer.stop());

    browser = await launchBrowser(root);
    cleanup.push(() => browser.close());
    const page = browser.pages()[0] || await browser.newPage();
    wb = new Workbench(page, artifacts);
    await wb.open(codeServer.url, workspace);
    await wb.clearNotifications();
    await wb.shot('01-workbench');

    await step('the extension is installed and activates', async () => {
      await wb.command('Extensions: Show Installed Extensions');
      await page.locator('.extensions-viewlet .monaco-list-row', { hasText: /nhdev/i }).first().waitFor({ timeout: 30_000 });
      await wb.shot('02-extension-installed');
      // It activates on workspaceContains:.nhdev/config.yaml; a failure shows only in the host's log.
      log(`activated: ${await waitExtensionActivated(codeServer.userDataDir, /nhdev/, 60_000)}`);
    });

    await step('F9 sets a breakpoint in app.py', async () => {
      await wb.command('View: Show Explorer');
      await wb.openFile('app.py');
      await wb.goToLine(breakLine);
      await wb.press('F9');
      await until(`a breakpoint glyph on line ${breakLine}`, async () => (await wb.breakpointLines()).includes(breakLine), 10_000)
        .catch((err) => {
          err.message += ' (VS Code sets breakpoints only in languages that an installed debugger declares in'
            + ' contributes.breakpoints: does the extension declare python?)';
          throw err;
        });
      await wb.shot('03-breakpoint-set');
    });

    await step(`the Run and Debug view offers "${CONFIG_NAME}"`, async () => {
      await wb.command('View: Show Run and Debug');
      // The launch configuration picker at the top of the view shows the selected configuration.
      const picker = page.locator('.start-debug-action-item-label').first();
      await picker.waitFor({ timeout: 20_000 });
      await until(`"${CONFIG_NAME}" selected in the launch configuration picker`,
        async () => (await picker.textContent())?.includes(CONFIG_NAME), 20_000);
      await wb.shot('04-run-and-debug');
    });

    let forward;
    await step('F5 starts dev mode and attaches the debugger', async () => {
      await wb.focusEditor();
      pressedF5 = true;
      await wb.press('F5');
      const status = await wb.until('dev mode with its session and forward', async () => {
        const st = JSON.parse(await nhdev('dev', 'status', WORKLOAD, '-o', 'json'));
        const fwd = st.localSession?.forwards?.find((f) => f.active);
        return st.inDevMode && st.localSession?.tunnel?.state === 'connected' && fwd ? st : null;
      }, 240_000, 1000);
      forward = status.localSession.forwards.find((f) => f.active).local;
      sessionLog = status.localSession.log;
      log(`dev mode on, session pid ${status.localSession.pid}, forward ${forward}`);
      await wb.until('the debugger attached (debug toolbar, Call Stack "Running", exception filters)',
        () => wb.debugRunning(), 120_000, 500);
      await sleep(1000);
      log(`call stack: ${JSON.stringify(await wb.callStack())}`);
      await wb.shot('05-attached');
    });

    let answer;
    await step('an HTTP request stops on the breakpoint', async () => {
      const url = `http://${forward}/`;
      log(`GET ${url}`);
      answer = fetch(url, { signal: AbortSignal.timeout(300_000) }).then(async (r) => ({ status: r.status, body: await r.text() }));
      answer.catch(() => {});
      const line = await wb.until('the debugger to pause (the yellow top-stack-frame line)', () => wb.topFrameLine(), 90_000);
      assert.equal(line, breakLine, `paused on line ${line}, not on the breakpoint's line ${breakLine}`);
      const stack = (await wb.callStack()).join(' | ');
      log(`paused: ${stack}`);
      assert.match(stack, /paused|do_GET/i);
      await wb.until('the Variables view to show the frame\'s locals', async () =>
        (await page.locator('.debug-variables .monaco-list-row').count()) >= 3, 10_000).catch((e) => log(e.message));
      await wb.shot('06-paused-on-breakpoint');
      cpSync(join(artifacts, '06-paused-on-breakpoint.png'), join(artifacts, 'vscode-breakpoint.png'));
      const pending = await Promise.race([answer.then(() => 'answered'), sleep(500).then(() => 'pending')]);
      assert.equal(pending, 'pending', 'the HTTP request was answered although the app is paused');
    });

    await step('F10 steps over to the next line', async () => {
      await wb.press('F10');
      await wb.until(`the top-stack-frame line to move to ${nextLine}`, async () => (await wb.topFrameLine()) === nextLine, 30_000);
      await wb.shot('07-stepped-over');
    });

    await step('F5 continues and the HTTP request completes', async () => {
      await wb.press('F5');
      const res = await answer;
      log(`HTTP ${res.status}: ${res.body.trim()}`);
      assert.equal(res.status, 200);
      assert.match(res.body, /Hello from nhdev's Python example/);
      await wb.until('the yellow line to go away', async () => (await wb.topFrameLine()) === null, 20_000);
      await wb.shot('08-continued');
    });

    await step('editing app.py and saving it (Ctrl+S) hot-reloads the debug command and re-attaches VS Code', async () => {
      const before = runService(await devStatus());
      const restarts = before.hotReload?.restarts ?? 0;
      assert.equal(before.hotReload?.enabled, true, `hot reload is off in the session: ${JSON.stringify(before.hotReload)}`);
      const reattachesBefore = (extensionLog().match(/attaching again/g) || []).length;
      // Type at the end of the GREETING string (before its closing quote), as a person would.
      await wb.goToLine(greetingLine);
      await wb.press('End');
      await wb.press('ArrowLeft');
      await page.keyboard.type(EDIT, { delay: 20 });
      await wb.press('Escape');
      // (The editor renders spaces as no-break spaces.)
      await until('the edit to show in the editor', async () =>
        (await wb.editor().locator('.view-lines').innerText()).replace(/\u00a0/g, ' ').includes(editedGreeting), 10_000);
      await wb.press('Control+S');
      await until('app.py saved (on disk, the tab not dirty)', async () =>
        readFileSync(join(workspace, 'app.py'), 'utf8').includes(`GREETING = "${editedGreeting}"`)
        && (await page.locator('.tabs-container .tab.active.dirty').count()) === 0, 20_000);
      await wb.shot('09-edited-and-saved');
      const after = await wb.until('the session to sync app.py and restart the debug command (hot reload)', async () => {
        const run = runService(await devStatus());
        return (run.hotReload?.restarts ?? 0) > restarts && run.debug?.running && run.debug?.attach ? run : null;
      }, 180_000, 1000);
      log(`hot reload #${after.hotReload.restarts}: debug command running again, attach ${JSON.stringify(after.debug.attach)}`);
      await wb.until('the extension to attach VS Code again ("attaching again" in its output channel)', async () =>
        (extensionLog().match(/attaching again/g) || []).length > reattachesBefore, 120_000, 500);
      await wb.until('the debugger attached again (debug toolbar, Call Stack "Running", exception filters)',
        () => wb.debugRunning(), 60_000, 500);
      // Settled: still attached a moment later, and no error or warning (e.g. "the debugger connection dropped").
      await sleep(1500);
      await wb.failOnError();
      assert.ok(await wb.debugRunning(), 'the re-attached debug session did not stay attached');
      const warnings = (await wb.toasts()).filter((t) => t.severity !== 'info');
      assert.deepEqual(warnings, [], `VS Code shows warnings after the hot reload: ${JSON.stringify(warnings)}`);
      log(`call stack after the re-attach: ${JSON.stringify(await wb.callStack())}`);
      // What the last step checks is gone: the restarted debugpy in the dev container.
      const debugpy = (await podProcesses()).filter((l) => /debugpy/.test(l));
      assert.ok(debugpy.length, 'no debugpy process in the dev container after the hot reload');
      log(`in the dev container: ${debugpy.join('; ')}`);
      assert.ok((await wb.breakpointLines()).includes(breakLine), `the breakpoint on line ${breakLine} is gone after the re-attach`);
      await wb.shot('10-reattached');
    });

    await step('after the hot reload an HTTP request stops on the breakpoint again and answers with the edited greeting', async () => {
      const url = `http://${forward}/`;
      log(`GET ${url}`);
      const again = fetch(url, { signal: AbortSignal.timeout(300_000) }).then(async (r) => ({ status: r.status, body: await r.text() }));
      again.catch(() => {});
      const line = await wb.until('the debugger to pause again (the yellow top-stack-frame line)', () => wb.topFrameLine(), 90_000);
      assert.equal(line, breakLine, `paused on line ${line}, not on the breakpoint's line ${breakLine}`);
      log(`paused again: ${(await wb.callStack()).join(' | ')}`);
      await wb.until('the Variables view to show the frame\'s locals', async () =>
        (await page.locator('.debug-variables .monaco-list-row').count()) >= 3, 10_000).catch((e) => log(e.message));
      await wb.shot('11-paused-after-hot-reload');
      const pending = await Promise.race([again.then(() => 'answered'), sleep(500).then(() => 'pending')]);
      assert.equal(pending, 'pending', 'the HTTP request was answered although the app is paused');
      await wb.press('F5');
      const res = await again;
      log(`HTTP ${res.status}: ${res.body.trim()}`);
      assert.equal(res.status, 200);
      assert.ok(res.body.startsWith(editedGreeting), `the answer does not carry the edited greeting "${editedGreeting}": ${res.body.trim()}`);
      await wb.until('the yellow line to go away', async () => (await wb.topFrameLine()) === null, 20_000);
    });

    await step('Shift+F5 stops debugging', async () => {
      await wb.focusEditor();
      await wb.press('Shift+F5');
      await wb.until('the debug session to end (no Call Stack rows)', async () => (await wb.callStack()).length === 0, 30_000);
      await wb.shot('12-stopped');
    });

    await step('the debug command stopped in the pod', async () => {
      const st = await until('the session to report the debug command stopped', async () => {
        const s = await devStatus();
        return s.inDevMode && s.localSession && !runService(s).debug?.running ? s : null;
      }, 60_000, 1000);
      log(`debug command: ${JSON.stringify(runService(st).debug)}`);
      const procs = await until('no debugpy process left in the dev container', async () => {
        const lines = await podProcesses();
        return lines.length && !lines.some((l) => /debugpy/.test(l)) ? lines : null;
      }, 60_000, 2000);
      log(`processes in the dev container: ${procs.map((l) => l.slice(0, 60)).join('; ')}`);
    });
  } catch (err) {
    if (wb) await wb.shot('failure').catch(() => {});
    throw err;
  } finally {
    if (wb && wb.consoleErrors.length) log(`browser console errors: ${wb.consoleErrors.length} (first: ${wb.consoleErrors[0].slice(0, 300)})`);
    for (const fn of cleanup.reverse()) await fn().catch((e) => log(`cleanup: ${e.message}`));
    if (pressedF5) await nhdev('dev', 'end', WORKLOAD).then(() => log('dev mode ended')).catch((e) => log(`nhdev dev end: ${e.message.split('\n')[0]}`));
    collect(join(artifacts, 'logs'), {
      'vscode': codeServer && join(codeServer.userDataDir, 'logs'),
      'nhdev-session.log': sessionLog,
    });
    if (process.env.NHDEV_IDE_KEEP === '1') log(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
    log(`artifacts: ${artifacts}`);
  }
});
