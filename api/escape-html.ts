/** Escapes text for HTML element content and quoted attributes (OWASP XSS rule #1 and #2). */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`=/]/g, (c) => `&#${c.charCodeAt(0)};`);
}
