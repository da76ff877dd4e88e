/**
 * Where a CPU profile's time went, as text: self time per function and per package (or per file
 * of ours), heaviest first. For profiles written by `npm run bench -- ingest --profile DIR`.
 *
 *   node --import tsx bench/profile-summary.ts FILE.cpuprofile [--top 40]
 */
import { readFileSync } from 'node:fs';
import { numberArg } from './args.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** "aedes", "node:internal/…", "ours: ingest/batch-writer.ts", or the V8 pseudo-frame's name. */
function packageOf(url: string, fn: string): string {
  if (!url) return `(${fn || 'anonymous'})`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 14).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const m =
    /\/(app|audit|auth|bench|broker|dashboards|db|devices|firmware|ingest|provisioning|simulators)\/[^/]+$/.exec(
      url,
    );
  return m ? `ours: ${m[0].slice(1)}` : url;
}

export function summarise(profile: Profile, top: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) =>
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)),
  );
  let total = 0;
  const fns = new Map<string, number>();
  const pkgs = new Map<string, number>();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    total += us;
    if (functionName === '(idle)' || functionName === '(program)') continue;
    const fkey = `${functionName || '(anonymous)'}  ${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(?=[a-z]+\/[^/]+$)/, '')}:${lineNumber + 1}`;
    fns.set(fkey, (fns.get(fkey) ?? 0) + us);
    const p = packageOf(url, functionName);
    pkgs.set(p, (pkgs.get(p) ?? 0) + us);
  }
  const idle = [...self]
    .filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)')
    .reduce((n, [, us]) => n + us, 0);
  const pct = (us: number): string => `${((us / total) * 100).toFixed(1).padStart(5)} %`;
  const lines = [
    `profile: ${(total / 1e6).toFixed(1)} s sampled, idle ${pct(idle)}`,
    '',
    'by package:',
  ];
  for (const [k, us] of [...pkgs].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`${pct(us)}  ${k}`);
  lines.push('', 'by function (self time):');
  for (const [k, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`${pct(us)}  ${k}`);
  return lines.join('\n');
}

if (process.argv[2] && !process.argv[2].startsWith('--')) {
  console.log(
    summarise(JSON.parse(readFileSync(process.argv[2], 'utf8')) as Profile, numberArg('top', 40)),
  );
}
