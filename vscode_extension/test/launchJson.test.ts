import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { parse } from 'jsonc-parser';
import { addLaunchEntry, detectFormatting } from '../src/lib/launchJson';

const ENTRY = { name: 'nhdev: debug greeter', type: 'nhdev', request: 'attach', workload: 'deployment/greeter' };

const WITH_COMMENTS = `{
  // My launch configurations. Do not lose this comment.
  "version": "0.2.0",
  "configurations": [
    /* the app, locally */
    {
      "name": "Python: app.py",
      "type": "debugpy",
      "request": "launch",
      "program": "\${workspaceFolder}/app.py", // trailing comment
    },
  ],
  // end
}
`;

test('an entry is appended and every comment, trailing comma and line stays', () => {
  const edit = addLaunchEntry(WITH_COMMENTS, ENTRY);
  assert.ok(edit.added);
  for (const line of WITH_COMMENTS.split('\n').filter((l) => l.includes('//') || l.includes('/*'))) {
    assert.ok(edit.text.includes(line), `kept: ${line}`);
  }
  assert.ok(edit.text.startsWith(WITH_COMMENTS.slice(0, WITH_COMMENTS.indexOf('    },'))), 'everything before the insertion is untouched');
  const parsed = parse(edit.text, [], { allowTrailingComma: true }) as { configurations: Record<string, unknown>[] };
  assert.deepEqual(parsed.configurations.map((c) => c.name), ['Python: app.py', 'nhdev: debug greeter']);
  assert.deepEqual(parsed.configurations[1], ENTRY);
  assert.match(edit.text, /\n {4}\{\n {6}"name": "nhdev: debug greeter"/, 'indented like the file (2 spaces)');
});

test('the same entry is not added twice', () => {
  const once = addLaunchEntry(WITH_COMMENTS, ENTRY).text;
  const twice = addLaunchEntry(once, ENTRY);
  assert.equal(twice.added, false);
  assert.equal(twice.text, once);
  assert.match(twice.reason ?? '', /already has/);
  assert.ok(addLaunchEntry(once, { ...ENTRY, mode: 'duplicate' }).added, 'another mode is another entry');
});

test('no launch.json yet, or one without configurations, or with tabs', () => {
  const created = addLaunchEntry(undefined, ENTRY);
  assert.ok(created.added);
  assert.deepEqual((parse(created.text) as { configurations: unknown[] }).configurations, [ENTRY]);
  assert.match(created.text, /\/\/ nhdev: press F5/);
  const bare = addLaunchEntry('{\n\t// settings\n\t"version": "0.2.0"\n}\n', ENTRY);
  assert.ok(bare.added);
  assert.match(bare.text, /\t\/\/ settings/);
  assert.match(bare.text, /\n\t"configurations": \[\n\t\t\{\n\t\t\t"name"/);
  const noVersion = addLaunchEntry('{ "configurations": [] }', ENTRY);
  assert.equal((parse(noVersion.text) as { version: string }).version, '0.2.0');
  assert.deepEqual(detectFormatting('{\n    "a": 1\n}'), { insertSpaces: true, tabSize: 4, eol: '\n' });
  assert.equal(detectFormatting('{\r\n  "a": 1\r\n}').eol, '\r\n');
});

test('a launch.json that does not parse is left alone', () => {
  const broken = '{ "configurations": [ { "name": } ] }';
  const edit = addLaunchEntry(broken, ENTRY);
  assert.equal(edit.added, false);
  assert.equal(edit.text, broken);
  assert.match(edit.reason ?? '', /does not parse/);
  assert.match(addLaunchEntry('{ "configurations": {} }', ENTRY).reason ?? '', /not a list/);
});
