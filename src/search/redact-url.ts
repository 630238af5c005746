// Database and queue URLs carry passwords: every message, log line and /health answer shows them redacted.
/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
}

export const isPostgresUrl = (s: string): boolean => /^postgres(ql)?:\/\//i.test(s);

/** A `--db` value as shown to people: a postgres:// URL without its password, a path as it is. */
export const shownDb = (db: string): string => (isPostgresUrl(db) ? redactUrl(db) : db);
