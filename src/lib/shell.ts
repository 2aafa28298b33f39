/**
 * Quotes a string as one POSIX shell word: single quotes, with each embedded `'` written as
 * `'\''`. The one quoting function for anything spliced into a `sh -c` command line.
 */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
