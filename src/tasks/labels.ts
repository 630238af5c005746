// Class labels as people type them on a command line or in a file.

/** Separators in a --labels list: the ASCII comma and the full-width comma of CJK input methods. */
const SEPARATORS = new Set([',', '\uFF0C']);

/**
 * Split a comma-separated label list. `\,` (or `\，`) keeps a comma inside a label and `\\` is a backslash;
 * labels are trimmed and empty ones dropped.
 */
export function splitLabels(list: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < list.length; i++) {
    const ch = list[i]!;
    const next = list[i + 1];
    if (ch === '\\' && next !== undefined && (SEPARATORS.has(next) || next === '\\')) {
      cur += next;
      i++;
    } else if (SEPARATORS.has(ch)) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter(Boolean);
}

/** Labels from a file: one per line, trimmed, blank lines skipped (commas are part of the label). */
export function labelsFromText(text: string): string[] {
  return text.split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
}

/** A warning for label sets that cannot rank anything, or undefined. */
export function labelSetWarning(labels: readonly string[]): string | undefined {
  if (labels.length === 1) {
    return `one label ("${labels[0]}"): a softmax over one label is always 1.0; give two or more labels to compare ` +
      '(e.g. add "something else")';
  }
  return undefined;
}
