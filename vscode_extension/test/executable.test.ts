import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { findNhdev, installHelp } from '../src/lib/executable';
import { tempDir } from './helpers/fakeSession';

function executable(file: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '#!/bin/sh\n', { mode: 0o755 });
  return file;
}

test('the nhdev.path setting wins: absolute, ~, ${workspaceFolder}, relative, or a bare name on PATH', () => {
  const root = tempDir();
  const bin = executable(path.join(root, 'tools', 'nhdev'));
  executable(path.join(root, 'ws', '.venv', 'bin', 'nhdev'));
  const query = { workspaceFolders: [path.join(root, 'ws')], envPath: path.join(root, 'tools'), home: root, platform: 'linux' as const };
  assert.deepEqual(findNhdev({ ...query, setting: bin }).found, { path: bin, source: 'setting' });
  assert.equal(findNhdev({ ...query, setting: '~/tools/nhdev' }).found?.path, bin);
  assert.equal(findNhdev({ ...query, setting: '${workspaceFolder}/../tools/nhdev' }).found?.path, bin);
  assert.equal(findNhdev({ ...query, setting: '../tools/nhdev' }).found?.path, bin);
  assert.equal(findNhdev({ ...query, setting: 'nhdev' }).found?.path, bin);
  const broken = findNhdev({ ...query, setting: path.join(root, 'nope') });
  assert.equal(broken.found, undefined);
  assert.match(broken.problem ?? '', /not an executable file/);
  assert.match(installHelp(broken), /nhdev.path is set to/);
});

test('without a setting: the workspace venv (in the folder or above it), then PATH', () => {
  const root = tempDir();
  const project = path.join(root, 'repo', 'examples', 'app');
  fs.mkdirSync(project, { recursive: true });
  const onPath = executable(path.join(root, 'bin', 'nhdev'));
  const query = { workspaceFolders: [project], envPath: `/nonexistent:${path.join(root, 'bin')}`, platform: 'linux' as const };
  assert.deepEqual(findNhdev(query).found, { path: onPath, source: 'PATH' });
  const repoVenv = executable(path.join(root, 'repo', '.venv', 'bin', 'nhdev'));
  assert.deepEqual(findNhdev(query).found, { path: repoVenv, source: 'workspace venv' });
  const ownVenv = executable(path.join(project, '.venv', 'bin', 'nhdev'));
  assert.equal(findNhdev(query).found?.path, ownVenv);
  fs.chmodSync(ownVenv, 0o644); // not executable: skipped
  assert.equal(findNhdev(query).found?.path, repoVenv);
});

test('nothing found: the help says how to install and where it looked', () => {
  const root = tempDir();
  const lookup = findNhdev({ workspaceFolders: [root], envPath: '', platform: 'linux' });
  assert.equal(lookup.found, undefined);
  assert.ok(lookup.tried.includes(path.join(root, '.venv', 'bin', 'nhdev')) && lookup.tried.includes('nhdev on PATH'));
  const help = installHelp(lookup);
  assert.match(help, /The nhdev command was not found/);
  assert.match(help, /pip install -e \./);
  assert.match(help, /nhdev\.path/);
  assert.match(help, /Looked at:/);
});
