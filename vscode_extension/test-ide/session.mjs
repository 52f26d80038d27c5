// One IDE test's life around what it checks: an example copied to a temporary workspace and
// deployed to the sandbox, code-server with the .vsix on that folder, headless Chromium on it, and
// afterwards everything stopped (dev mode ended if F5 started it), logs collected, the temporary
// folder removed. Plus the steps both language tests take the same way.
//
// Environment (set by scripts/test-ide):
//   NHDEV_IDE_KUBECONFIG  the sandbox's kubeconfig (required)
//   NHDEV_IDE_VSIX        the extension package (default: the newest vscode_extension/nhdev-*.vsix)
//   NHDEV_BIN             the nhdev CLI (default: the repo's .venv/bin/nhdev)
//   NHDEV_IDE_ARTIFACTS   where screenshots and logs go (default: test-ide/artifacts)
//   NHDEV_IDE_KEEP=1      keep the temporary directory (workspace, code-server's data) afterwards

import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  HERE, REPO, QUIET_SETTINGS, Workbench, collect, launchBrowser, log, newestVsix, run, startCodeServer,
  stepper, until, waitExtensionActivated,
} from './lib.mjs';

const NAMESPACE = 'default';
const nhdevBin = process.env.NHDEV_BIN || join(REPO, '.venv', 'bin', 'nhdev');

/** Where a test's screenshots and logs go: `sub` of NHDEV_IDE_ARTIFACTS (or test-ide/artifacts). */
export function artifactsDir(sub = '') {
  return join(process.env.NHDEV_IDE_ARTIFACTS || join(HERE, 'artifacts'), sub);
}

/**
 * Runs `body(ide)` with the example `example` (a folder of examples/) deployed as `app` and open in
 * VS Code. `ide` holds: workspace, page, wb (Workbench), codeServer, nhdev(...args) (the CLI in the
 * workspace, resolving to stdout), devStatus() (`nhdev dev status WORKLOAD -o json`, parsed),
 * step(title, fn) (a logged step), say(...) (a log line with the test's tag), pressedF5() (to be
 * called before F5: dev mode is then ended afterwards), sessionLog(path) (the session log to keep).
 *
 * `deployUntil` is what deploy_example.py waits for ('ready' or 'running'); `keepArtifacts` names
 * entries of the artifacts folder that belong to other tests and are left alone.
 */
export async function withIdeSession({ example, app, workload, tag = '', artifacts, keepArtifacts = [],
  deployUntil = 'ready', settings = {} }, body) {
  const kubeconfig = process.env.NHDEV_IDE_KUBECONFIG;
  const vsix = process.env.NHDEV_IDE_VSIX || newestVsix(join(REPO, 'vscode_extension'));
  assert.ok(kubeconfig && existsSync(kubeconfig), 'NHDEV_IDE_KUBECONFIG must name the sandbox kubeconfig');
  assert.ok(vsix && existsSync(vsix), `no extension package (.vsix) found: ${vsix}`);
  for (const f of existsSync(artifacts) ? readdirSync(artifacts) : []) {
    if (!keepArtifacts.includes(f)) rmSync(join(artifacts, f), { recursive: true, force: true });
  }
  mkdirSync(artifacts, { recursive: true });
  const say = (...args) => log(`${tag}${args.join(' ')}`);
  const root = mkdtempSync(join(tmpdir(), `nhdev-test-ide-${app}-`));
  const workspace = join(root, example);
  cpSync(join(REPO, 'examples', example), workspace, { recursive: true });
  // For code-server and, through it, the extension host (which takes PATH from the login shell
  // instead; the extension finds nhdev through the nhdev.path setting).
  const env = { KUBECONFIG: kubeconfig, PATH: `${dirname(nhdevBin)}:${process.env.PATH}` };
  const nhdev = (...args) => run(nhdevBin, args, { cwd: workspace, env: { ...process.env, ...env } });
  const ide = {
    workspace,
    nhdev,
    say,
    step: stepper(tag),
    devStatus: async () => JSON.parse(await nhdev('dev', 'status', workload, '-o', 'json')),
    pressedF5: () => { f5 = true; },
    sessionLog: (path) => { keptLog = path; },
  };
  let f5 = false;
  let keptLog;
  const cleanup = [];
  try {
    say(`deploying examples/${example} to the sandbox`);
    const python = join(dirname(nhdevBin), 'python');
    const pod = (await run(python, [join(HERE, 'deploy_example.py'), kubeconfig, workspace, NAMESPACE, app, deployUntil])).trim();
    say(`${app} ${deployUntil}: pod ${pod}`);

    ide.codeServer = await startCodeServer({
      root,
      folder: workspace,
      vsixes: [vsix],
      env,
      logFile: join(artifacts, 'code-server.log'),
      settings: { ...QUIET_SETTINGS, 'nhdev.path': nhdevBin, ...settings },
    });
    cleanup.push(() => ide.codeServer.stop());
    const browser = await launchBrowser(root);
    cleanup.push(() => browser.close());
    ide.page = browser.pages()[0] || await browser.newPage();
    ide.wb = new Workbench(ide.page, artifacts);
    await ide.wb.open(ide.codeServer.url, workspace);
    await ide.wb.clearNotifications();
    await body(ide);
  } catch (err) {
    if (ide.wb) await ide.wb.shot('failure').catch(() => {});
    throw err;
  } finally {
    const errors = ide.wb?.consoleErrors ?? [];
    if (errors.length) say(`browser console errors: ${errors.length} (first: ${errors[0].slice(0, 300)})`);
    for (const fn of cleanup.reverse()) await fn().catch((e) => say(`cleanup: ${e.message}`));
    if (f5) {
      await nhdev('dev', 'end', workload).then(() => say('dev mode ended'))
        .catch((e) => say(`nhdev dev end: ${e.message.split('\n')[0]}`));
    }
    collect(join(artifacts, 'logs'), {
      'vscode': ide.codeServer && join(ide.codeServer.userDataDir, 'logs'),
      'nhdev-session.log': keptLog,
    });
    if (process.env.NHDEV_IDE_KEEP === '1') say(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
    say(`artifacts: ${artifacts}`);
  }
}

/** The extension activates (on workspaceContains:.nhdev/config.yaml; a failure shows only in the host's log). */
export async function extensionActivates(ide) {
  ide.say(`activated: ${await waitExtensionActivated(ide.codeServer.userDataDir, /nhdev/, 60_000)}`);
}

/** Opens `file`, goes to `line` and presses F9: a breakpoint glyph shows there. */
export async function setBreakpoint(ide, file, line, language) {
  const { wb } = ide;
  await wb.command('View: Show Explorer');
  await wb.openFile(file);
  await wb.goToLine(line);
  await wb.press('F9');
  await until(`a breakpoint glyph on line ${line}`, async () => (await wb.breakpointLines()).includes(line), 10_000)
    .catch((err) => {
      err.message += ' (VS Code sets breakpoints only in languages that an installed debugger declares in'
        + ` contributes.breakpoints: does the extension declare ${language}?)`;
      throw err;
    });
}

/** The Run and Debug view's launch configuration picker shows `name` (from .vscode/launch.json). */
export async function launchConfigOffered(ide, name) {
  await ide.wb.command('View: Show Run and Debug');
  const picker = ide.page.locator('.start-debug-action-item-label').first();
  await picker.waitFor({ timeout: 20_000 });
  await until(`"${name}" selected in the launch configuration picker`,
    async () => (await picker.textContent())?.includes(name), 20_000);
}

/** Presses F5 in the editor and waits for dev mode with a connected session and a forward; returns its local address. */
export async function f5StartsDevMode(ide) {
  await ide.wb.focusEditor();
  ide.pressedF5();
  await ide.wb.press('F5');
  const status = await ide.wb.until('dev mode with its session and forward', async () => {
    const st = await ide.devStatus();
    const fwd = st.localSession?.forwards?.find((f) => f.active);
    return st.inDevMode && st.localSession?.tunnel?.state === 'connected' && fwd ? st : null;
  }, 240_000, 1000);
  const forward = status.localSession.forwards.find((f) => f.active).local;
  ide.sessionLog(status.localSession.log);
  ide.say(`dev mode on, session pid ${status.localSession.pid}, forward ${forward}`);
  return forward;
}
