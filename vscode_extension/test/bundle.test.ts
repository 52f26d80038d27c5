/**
 * The bundle VS Code loads (dist/extension.js, as `npm run package` ships it) loads in plain Node
 * with only `vscode` missing: everything else it needs is inside it (no run-time require of a
 * dependency's files, which is how a UMD dependency breaks a bundle).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

const Module = require('node:module') as { _load: (request: string, parent: unknown, isMain: boolean) => unknown };

test('dist/extension.js loads with nothing but vscode external, and exports activate/deactivate', () => {
  const bundle = path.resolve(__dirname, '..', '..', 'dist', 'extension.js');
  assert.ok(fs.existsSync(bundle), `${bundle} missing: npm test builds it first`);
  const requested: string[] = [];
  const original = Module._load;
  Module._load = function load(request: string, parent: unknown, isMain: boolean) {
    requested.push(request);
    if (request === 'vscode') {
      return {};
    }
    return original.call(this, request, parent, isMain);
  };
  try {
    const extension = require(bundle) as Record<string, unknown>;
    assert.equal(typeof extension.activate, 'function');
    assert.equal(typeof extension.deactivate, 'function');
  } finally {
    Module._load = original;
  }
  const external = requested.filter((r) => r !== bundle && !r.startsWith('node:') && r !== 'vscode');
  assert.deepEqual(external, [], 'only node: built-ins and vscode are required at run time');
});
