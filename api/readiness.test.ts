import { describe, expect, it } from 'vitest';
import { runProbe } from './platform.ts';

describe('readiness probes', () => {
  it('count a probe that never answers as not ready, instead of holding /readyz', async () => {
    expect(
      await runProbe({ name: 'database', check: () => new Promise<boolean>(() => undefined) }, 50),
    ).toBe(false);
  });
  it('count a failing probe as not ready and a passing one as ready', async () => {
    expect(
      await runProbe({
        name: 'database',
        check: () => Promise.reject(new Error('connect ECONNREFUSED')),
      }),
    ).toBe(false);
    expect(await runProbe({ name: 'broker', check: () => Promise.resolve(true) })).toBe(true);
  });
  it('count a probe that throws before it returns a promise (a component not built yet) as not ready', async () => {
    const broker = undefined as { listening(): boolean } | undefined;
    expect(
      await runProbe({ name: 'broker', check: () => Promise.resolve(broker!.listening()) }),
    ).toBe(false);
  });
});
