import { permissions, rolePermissions, roles } from './permissions.ts';

/** The permission matrix as the Markdown table in docs/security-model.md (a test keeps them equal). */
export function permissionMatrixMarkdown(): string {
  const header = `| permission | ${roles.join(' | ')} |`;
  const rule = `|---|${roles.map(() => ':-:').join('|')}|`;
  const rows = permissions.map(
    (p) => `| \`${p}\` | ${roles.map((r) => (rolePermissions[r].has(p) ? '✓' : '')).join(' | ')} |`,
  );
  return [header, rule, ...rows].join('\n');
}
