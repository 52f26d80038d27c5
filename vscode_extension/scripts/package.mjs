// npm run package: build (vsce runs vscode:prepublish), package with vsce, then normalize the zip so
// that the same sources give the same bytes: entries sorted, timestamps fixed (SOURCE_DATE_EPOCH or
// the package.json version's fixed date), same compression. Output: nhdev-<version>.vsix here.
import { spawnSync } from 'node:child_process';
import { readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { normalizeZip } from './normalize-zip.mjs';

process.env.TZ = 'UTC'; // zip (DOS) timestamps are local times: the same bytes in every time zone

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const out = join(root, `${pkg.name}-${pkg.version}.vsix`);
const raw = `${out}.tmp`;
const vsce = join(root, 'node_modules', '@vscode', 'vsce', 'vsce');

const done = spawnSync(process.execPath, [vsce, 'package', '--no-dependencies', '--allow-missing-repository',
  '--out', raw], { cwd: root, stdio: 'inherit' });
if (done.status !== 0) {
  rmSync(raw, { force: true });
  process.exit(done.status ?? 1);
}
const epoch = Number(process.env.SOURCE_DATE_EPOCH || Date.UTC(2025, 0, 1) / 1000);
await normalizeZip(raw, out, new Date(epoch * 1000));
rmSync(raw, { force: true });
console.log(`${out} (${statSync(out).size} bytes)`);
