// A small RFC 4180 CSV parser (quoted fields, doubled quotes, CRLF, BOM) for dataset index files.

/** Tab when the first line has a tab (open_clip's `filepath\ttitle` files), otherwise comma. */
export function sniffDelimiter(text: string): ',' | '\t' {
  const nl = text.indexOf('\n');
  return (nl < 0 ? text : text.slice(0, nl)).includes('\t') ? '\t' : ',';
}

/**
 * Rows of fields. Blank lines are dropped. Throws on an unterminated quote, naming `source` and the line
 * where the quoted field began.
 */
export function parseCsv(text: string, source: string, delimiter = sniffDelimiter(text)): { fields: string[]; line: number }[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const rows: { fields: string[]; line: number }[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let rowLine = 1;
  let i = 0;
  const endRow = () => {
    fields.push(field);
    if (fields.length > 1 || fields[0] !== '') rows.push({ fields, line: rowLine });
    fields = [];
    field = '';
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"' && field === '') {
      const start = line;
      i++;
      for (;;) {
        if (i >= text.length) throw new Error(`${source}:${start}: unterminated quoted field`);
        const q = text[i]!;
        if (q === '"') {
          if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
          i++;
          break;
        }
        if (q === '\n') line++;
        field += q;
        i++;
      }
      continue;
    }
    if (c === delimiter) { fields.push(field); field = ''; i++; continue; }
    if (c === '\r' && text[i + 1] === '\n') { i++; continue; }
    if (c === '\n') { endRow(); line++; rowLine = line; i++; continue; }
    field += c;
    i++;
  }
  if (field !== '' || fields.length) endRow();
  return rows;
}
