/**
 * Adding an entry to `.vscode/launch.json` without disturbing the rest of it: comments, trailing
 * commas, ordering and indentation stay as the user wrote them (jsonc-parser edits, not a rewrite).
 */
import { applyEdits, FormattingOptions, modify, parse, ParseError, printParseErrorCode } from 'jsonc-parser';

export interface LaunchEdit {
  text: string;
  added: boolean;
  reason?: string; // why nothing was added
}

/** The indentation a JSON text uses (first indented line), defaulting to 4 spaces as VS Code writes launch.json. */
export function detectFormatting(text: string): FormattingOptions {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const indented = text.split(/\r?\n/).find((line) => /^[ \t]+\S/.test(line));
  if (indented?.startsWith('\t')) {
    return { insertSpaces: false, tabSize: 4, eol };
  }
  const spaces = indented ? indented.length - indented.trimStart().length : 4;
  return { insertSpaces: true, tabSize: Math.min(Math.max(spaces, 1), 8), eol };
}

function sameEntry(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return a.type === b.type && a.request === b.request && (a.workload ?? null) === (b.workload ?? null) && (a.mode ?? 'replace') === (b.mode ?? 'replace');
}

const NEW_FILE = '{\n    // nhdev: press F5 to start dev mode in the cluster and attach the debugger.\n    "version": "0.2.0",\n    "configurations": []\n}\n';

/**
 * `text` (the file's content, or undefined when there is none) with `entry` appended to
 * `configurations`. An equal entry already there (type, request, workload, mode) is not added twice.
 */
export function addLaunchEntry(text: string | undefined, entry: Record<string, unknown>): LaunchEdit {
  const source = text === undefined || text.trim() === '' ? NEW_FILE : text;
  const errors: ParseError[] = [];
  const document = parse(source, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length) {
    const first = errors[0];
    return { text: source, added: false, reason: `launch.json does not parse (${printParseErrorCode(first.error)} at offset ${first.offset}); fix it first` };
  }
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    return { text: source, added: false, reason: 'launch.json does not hold a JSON object' };
  }
  const formattingOptions = detectFormatting(source);
  let result = source;
  const configurations = (document as Record<string, unknown>).configurations;
  if (configurations !== undefined && !Array.isArray(configurations)) {
    return { text: source, added: false, reason: '"configurations" in launch.json is not a list' };
  }
  if (Array.isArray(configurations) && configurations.some((c) => c && typeof c === 'object' && sameEntry(c as Record<string, unknown>, entry))) {
    return { text: source, added: false, reason: 'launch.json already has this configuration' };
  }
  if (!('version' in (document as Record<string, unknown>))) {
    result = applyEdits(result, modify(result, ['version'], '0.2.0', { formattingOptions }));
  }
  const edits = Array.isArray(configurations)
    ? modify(result, ['configurations', configurations.length], entry, { formattingOptions, isArrayInsertion: true })
    : modify(result, ['configurations'], [entry], { formattingOptions });
  result = applyEdits(result, edits);
  return { text: result, added: true };
}
