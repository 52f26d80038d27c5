// The nhdev extension in real VS Code: code-server with the packaged .vsix, driven in headless
// Chromium as a person would. Opens a copy of examples/python-http (deployed to the sandbox), sets a
// breakpoint in app.py with F9, starts the "nhdev: debug greeter" launch configuration with F5,
// sends an HTTP request to the forwarded port, sees VS Code stop on the breakpoint, steps over
// (F10), continues (F5) and gets the HTTP answer. Then hot reload: edits GREETING in app.py in the
// editor and saves it (Ctrl+S); the session syncs it and restarts the debug command, the extension
// re-attaches VS Code by itself, and the next request stops on the breakpoint again and answers
// with the edited greeting. Shift+F5 ends debugging and stops the debug command in the pod.
// Screenshots and logs go to artifacts/. Run by scripts/test-ide (environment: session.mjs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { log, until, sleep, lineOf, outputChannelText } from '../lib.mjs';
import {
  artifactsDir, extensionActivates, f5StartsDevMode, launchConfigOffered, setBreakpoint, withIdeSession,
} from '../session.mjs';

const WORKLOAD = 'deployment/greeter';
const CONFIG_NAME = 'nhdev: debug greeter';
const artifacts = artifactsDir();

test('debug the Python example in VS Code: breakpoint, step over, continue, hot reload re-attach', { timeout: 900_000 }, async () => {
  await withIdeSession({
    example: 'python-http', app: 'greeter', workload: WORKLOAD, artifacts,
    keepArtifacts: ['go'], // debug-go.test.mjs's
    // Only for diagnosing: lets F9 work even where no installed debugger declares the language.
    settings: process.env.NHDEV_IDE_ALLOW_BREAKPOINTS_EVERYWHERE === '1' ? { 'debug.allowBreakpointsEverywhere': true } : {},
  }, async (ide) => {
    const { wb, page, workspace, step, nhdev, devStatus } = ide;
    const source = readFileSync(join(workspace, 'app.py'), 'utf8');
    const breakLine = lineOf(source, 'body = f"', 'app.py');
    const nextLine = lineOf(source, 'self.send_response(200)', 'app.py');
    const greetingLine = lineOf(source, 'GREETING = "', 'app.py');
    const EDIT = ' - edited in VS Code';
    const editedGreeting = `${/GREETING = "([^"]*)"/.exec(source)[1]}${EDIT}`;
    // The run service of the session (services.run): debug command, hot reload count.
    const runService = (st) => st.localSession?.services?.run ?? {};
    // The command lines of the dev container's processes (/proc: the image may have no ps); nhdev dev
    // exec passes its command as is, no shell quoting involved.
    const podProcesses = async () => (await nhdev('dev', 'exec', WORKLOAD, '--', 'sh', '-c',
      'for p in /proc/[0-9]*; do [ -r $p/cmdline ] && tr "\\0" " " < $p/cmdline && echo; done'))
      .split('\n').map((l) => l.trim()).filter(Boolean);
    // The extension's own output channel ("nhdev"), where it logs each attach and re-attach.
    const extensionLog = () => outputChannelText(ide.codeServer.userDataDir, /^\d+-nhdev\.log$/);
    await wb.shot('01-workbench');

    await step('the extension is installed and activates', async () => {
      await wb.command('Extensions: Show Installed Extensions');
      await page.locator('.extensions-viewlet .monaco-list-row', { hasText: /nhdev/i }).first().waitFor({ timeout: 30_000 });
      await wb.shot('02-extension-installed');
      await extensionActivates(ide);
    });

    await step('F9 sets a breakpoint in app.py', async () => {
      await setBreakpoint(ide, 'app.py', breakLine, 'python');
      await wb.shot('03-breakpoint-set');
    });

    await step(`the Run and Debug view offers "${CONFIG_NAME}"`, async () => {
      await launchConfigOffered(ide, CONFIG_NAME);
      await wb.shot('04-run-and-debug');
    });

    let forward;
    await step('F5 starts dev mode and attaches the debugger', async () => {
      forward = await f5StartsDevMode(ide);
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
  });
});
