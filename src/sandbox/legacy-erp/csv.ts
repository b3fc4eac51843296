// RFC 4180 CSV: writing with minimal quoting and CRLF line breaks, and parsing that tracks the
// physical line each record starts on (quoted fields may span lines), so import errors can name
// the exact line of the file.

/** Quotes a field when it holds a comma, a double quote, CR or LF (quotes doubled inside). */
export function csvField(value: string | number | boolean): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Renders rows (the first usually the header) as RFC 4180 text with CRLF after every record. */
export function toCsv(rows: readonly (readonly (string | number | boolean)[])[]): string {
  return rows.map((row) => row.map(csvField).join(',') + '\r\n').join('');
}

export interface CsvRecord {
  /** 1-based physical line on which the record starts. */
  line: number;
  fields: string[];
}

export interface CsvParseResult {
  records: CsvRecord[];
  /** Structural errors (e.g. an unterminated quote), by the line where they start. */
  errors: { line: number; message: string }[];
}

/** Parses RFC 4180 text (CRLF or LF line breaks; a trailing line break is optional). */
export function parseCsv(text: string): CsvParseResult {
  const records: CsvRecord[] = [];
  const errors: { line: number; message: string }[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let inQuotes = false;
  let quoteStartLine = 1;
  let fieldStarted = false;
  let i = 0;
  const body = text.startsWith('\ufeff') ? text.slice(1) : text;

  const endRecord = (): void => {
    fields.push(field);
    // A completely empty line is not a record.
    if (!(fields.length === 1 && fields[0] === '' && !fieldStarted)) {
      records.push({ line: recordLine, fields });
    }
    fields = [];
    field = '';
    fieldStarted = false;
  };

  while (i < body.length) {
    const ch = body[i] as string;
    if (inQuotes) {
      if (ch === '"') {
        if (body[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        inQuotes = false;
        i += 1;
        continue;
      }
      if (ch === '\n') line += 1;
      field += ch;
      i += 1;
      continue;
    }
    if (ch === '"') {
      if (field !== '') {
        errors.push({ line, message: 'a quote inside an unquoted field' });
      }
      inQuotes = true;
      fieldStarted = true;
      quoteStartLine = line;
      i += 1;
      continue;
    }
    if (ch === ',') {
      fields.push(field);
      field = '';
      fieldStarted = true;
      i += 1;
      continue;
    }
    if (ch === '\r' || ch === '\n') {
      endRecord();
      i += ch === '\r' && body[i + 1] === '\n' ? 2 : 1;
      line += 1;
      recordLine = line;
      continue;
    }
    field += ch;
    fieldStarted = true;
    i += 1;
  }
  if (inQuotes) {
    errors.push({ line: quoteStartLine, message: 'unterminated quoted field' });
  } else if (field !== '' || fields.length > 0 || fieldStarted) {
    endRecord();
  }
  return { records, errors };
}
