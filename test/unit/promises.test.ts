import { memoizeUntilFailure, singleFlight } from '../../shared/promises';

describe('singleFlight', () => {
  it('gives callers that come while work runs the same promise, and runs again once it settled', async () => {
    const flight = singleFlight<number>();
    let runs = 0;
    let release!: (value: number) => void;
    const work = () => {
      runs += 1;
      return new Promise<number>((resolve) => (release = resolve));
    };
    const first = flight('a', work);
    const second = flight('a', work);
    const other = flight('b', () => Promise.resolve(7));
    expect(second).toBe(first);
    expect(runs).toBe(1);
    release(42);
    expect(await Promise.all([first, second, other])).toEqual([42, 42, 7]);
    await flight('a', () => Promise.resolve(1));
    expect(runs).toBe(1); // the third call ran its own work, not `work`
  });

  it('lets the next caller try again after a failure', async () => {
    const flight = singleFlight<string>();
    await expect(flight('x', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(await flight('x', () => Promise.resolve('up'))).toBe('up');
  });
});

describe('memoizeUntilFailure', () => {
  it('loads each key once and keeps the result', async () => {
    let loads = 0;
    const load = memoizeUntilFailure((key: string) => {
      loads += 1;
      return Promise.resolve(key.toUpperCase());
    });
    expect(await Promise.all([load('a'), load('a'), load('b')])).toEqual(['A', 'A', 'B']);
    expect(await load('a')).toBe('A');
    expect(loads).toBe(2);
  });

  it('forgets a failure so the next call loads again', async () => {
    let attempt = 0;
    const load = memoizeUntilFailure(() =>
      ++attempt === 1 ? Promise.reject(new Error('once')) : Promise.resolve(attempt),
    );
    await expect(load('k')).rejects.toThrow('once');
    expect(await load('k')).toBe(2);
    expect(await load('k')).toBe(2);
  });

  it('tells inputs apart by keyOf', async () => {
    let loads = 0;
    const load = memoizeUntilFailure(
      (_input: { url: string; table: string }) => Promise.resolve(++loads),
      (input) => `${input.url}|${input.table}`,
    );
    expect(await load({ url: 'u', table: 't' })).toBe(1);
    expect(await load({ url: 'u', table: 't' })).toBe(1);
    expect(await load({ url: 'u', table: 'other' })).toBe(2);
  });
});
