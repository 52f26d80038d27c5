// The nhdev extension in real VS Code, Go edition: code-server with the packaged .vsix (and no Go
// extension), driven in headless Chromium. Opens a copy of examples/go-http (deployed to the
// sandbox), sets a breakpoint in main.go's handler with F9, starts the "nhdev: debug greeter-go"
// launch configuration with F5 (the extension's DebugAdapterServer to dlv in the dev container),
// sends an HTTP request to the forwarded port, sees VS Code stop on the breakpoint, continues (F5)
// and gets the HTTP answer; Shift+F5 ends debugging. Screenshots and logs go to artifacts/go/.
//
// Skipped when go or dlv is not on PATH: the sandbox's dev-go stand-in runs the host's tools
// (Debian packages golang-go and delve). Same environment as debug-python.test.mjs (session.mjs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants, readFileSync } from 'node:fs';
import { join, delimiter } from 'node:path';
import { log, until, sleep, lineOf } from '../lib.mjs';
import {
  artifactsDir, extensionActivates, f5StartsDevMode, launchConfigOffered, setBreakpoint, withIdeSession,
} from '../session.mjs';

const WORKLOAD = 'deployment/greeter-go';
const CONFIG_NAME = 'nhdev: debug greeter-go';
const artifacts = artifactsDir('go');

// Where the sandbox's stand-in images find their tools (nhdev.sandbox.images.HOST_PATH), and PATH.
const HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
function onPath(tool) {
  return `${process.env.PATH || ''}${delimiter}${HOST_PATH}`.split(delimiter).filter(Boolean).some((d) => {
    try { accessSync(join(d, tool), constants.X_OK); return true; } catch { return false; }
  });
}
const missing = ['go', 'dlv'].filter((tool) => !onPath(tool));

test('debug the Go example in VS Code (dlv, no Go extension): breakpoint, continue, stop', { timeout: 900_000 }, async (t) => {
  if (missing.length) {
    t.skip(`${missing.join(' and ')} not on PATH: the sandbox's dev-go stand-in runs the host's go and dlv `
      + '(Debian packages golang-go and delve: `make deps` as root)');
    return;
  }
  await withIdeSession({
    example: 'go-http', app: 'greeter-go', workload: WORKLOAD, artifacts, tag: '[go] ',
    // Running is enough: dev mode replaces the pod, and the production app would compile first.
    deployUntil: 'running',
  }, async (ide) => {
    const { wb, page, workspace, step } = ide;
    const source = readFileSync(join(workspace, 'main.go'), 'utf8');
    const breakLine = lineOf(source, 'fmt.Fprintf(w', 'main.go');
    // Attached: the debug toolbar is up and the Call Stack view lists dlv's goroutines or says "Running".
    const attached = async () => {
      const toolbar = await page.locator('.debug-toolbar').isVisible().catch(() => false);
      const header = await page.locator('.pane-header', { hasText: 'Call Stack' }).first().textContent().catch(() => '');
      return toolbar && (/Running/.test(header || '') || (await wb.callStack()).length > 0);
    };

    await step('the extension activates', () => extensionActivates(ide));

    await step(`F9 sets a breakpoint in main.go's handler (line ${breakLine})`, async () => {
      await setBreakpoint(ide, 'main.go', breakLine, 'go');
      await wb.shot('01-breakpoint-set');
    });

    await step(`the Run and Debug view offers "${CONFIG_NAME}"`, () => launchConfigOffered(ide, CONFIG_NAME));

    let forward;
    await step('F5 starts dev mode, dlv builds the app and VS Code attaches', async () => {
      forward = await f5StartsDevMode(ide);
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
  });
});
