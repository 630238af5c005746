// JSON Lines: one value per non-empty line; a bad line is reported with its file and line number.
export function parseJsonl<T>(text: string, file: string): T[] {
  const rows: T[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    try {
      rows.push(JSON.parse(line) as T);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: ${(e as Error).message}`);
    }
  });
  return rows;
}
