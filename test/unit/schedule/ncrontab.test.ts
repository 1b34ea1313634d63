import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseNcrontab } from '../../../shared/schedule/ncrontab';

const iso = (date: Date | undefined) => date?.toISOString().replace('.000Z', 'Z');

describe('parseNcrontab: the examples of the Azure Functions timer trigger docs', () => {
  it.each<[string, string, string]>([
    // [expression, after, expected next]; 2026-03-13 is a Friday.
    ['0 */5 * * * *', '2026-03-13T12:34:56Z', '2026-03-13T12:35:00Z'],
    ['0 0 * * * *', '2026-03-13T12:34:56Z', '2026-03-13T13:00:00Z'],
    ['0 0 */2 * * *', '2026-03-13T12:34:56Z', '2026-03-13T14:00:00Z'],
    ['0 */10 * * * *', '2026-03-13T12:34:56Z', '2026-03-13T12:40:00Z'],
    ['*/15 * * * * *', '2026-03-13T12:34:56Z', '2026-03-13T12:35:00Z'],
    ['0 30 9 * * 1-5', '2026-03-13T12:34:56Z', '2026-03-16T09:30:00Z'],
    ['0 30 9 * Jan Mon', '2026-03-13T12:34:56Z', '2027-01-04T09:30:00Z'],
    ['0 0 0 1 1 *', '2026-03-13T12:34:56Z', '2027-01-01T00:00:00Z'],
  ])('%s is valid; after %s it fires at %s', (expression, after, expected) => {
    const schedule = parseNcrontab(expression);
    expect(schedule.expression).toBe(expression);
    expect(iso(schedule.next(new Date(after)))).toBe(expected);
  });
});

describe('parseNcrontab: next occurrence (UTC)', () => {
  it.each<[string, string, string]>([
    // [expression, after, expected next]
    ['0 */10 * * * *', '2026-03-15T12:40:00Z', '2026-03-15T12:50:00Z'],
    ['0 */10 * * * *', '2026-03-15T12:39:59.999Z', '2026-03-15T12:40:00Z'],
    ['0 */10 * * * *', '2026-12-31T23:55:00Z', '2027-01-01T00:00:00Z'],
    ['0 0 * * * *', '2026-03-15T23:30:00Z', '2026-03-16T00:00:00Z'],
    // 2026-01-01 is a Thursday.
    ['30 15 9 * * 1-5', '2026-01-01T09:15:30Z', '2026-01-02T09:15:30Z'],
    ['30 15 9 * * 1-5', '2026-01-02T09:15:30Z', '2026-01-05T09:15:30Z'],
    ['30 15 9 * * Mon-Fri', '2026-01-03T00:00:00Z', '2026-01-05T09:15:30Z'],
    ['*/15 * * * * *', '2026-03-15T10:00:14.500Z', '2026-03-15T10:00:15Z'],
    ['* * * * * *', '2026-03-15T12:34:56.789Z', '2026-03-15T12:34:57Z'],
    ['5/20 * * * * *', '2026-03-15T10:00:45Z', '2026-03-15T10:01:05Z'],
    ['0 0 9-17/4 * * *', '2026-03-15T17:00:00Z', '2026-03-16T09:00:00Z'],
    ['0 30 8,12,18 * * *', '2026-03-15T12:30:01Z', '2026-03-15T18:30:00Z'],
    // Day-of-week: 0 is Sunday, 6 is Saturday.
    ['0 0 0 * * 0', '2026-01-03T12:00:00Z', '2026-01-04T00:00:00Z'],
    ['0 0 0 * * sun', '2026-01-04T00:00:00Z', '2026-01-11T00:00:00Z'],
    ['0 0 0 * * 6', '2026-01-03T00:00:00Z', '2026-01-10T00:00:00Z'],
    // Months: names, lists, days a month lacks.
    ['0 0 0 1 Jan,Jul *', '2026-02-01T00:00:00Z', '2026-07-01T00:00:00Z'],
    ['0 0 0 1 jul-aug *', '2026-08-01T00:00:00Z', '2027-07-01T00:00:00Z'],
    ['0 0 0 31 * *', '2026-01-31T00:00:00Z', '2026-03-31T00:00:00Z'],
    ['0 0 0 * 2 *', '2026-02-28T00:00:00Z', '2027-02-01T00:00:00Z'],
    ['0 0 0 * 2 *', '2028-02-28T00:00:00Z', '2028-02-29T00:00:00Z'],
    // Feb 29: leap years only, and 2100 is not one.
    ['0 0 12 29 2 *', '2025-03-01T00:00:00Z', '2028-02-29T12:00:00Z'],
    ['0 0 12 29 Feb *', '2096-03-01T00:00:00Z', '2104-02-29T12:00:00Z'],
    // Year rollover.
    ['59 59 23 31 12 *', '2026-12-31T23:59:59Z', '2027-12-31T23:59:59Z'],
    // Extra whitespace is fine.
    ['  0  */10 *\t* * *  ', '2026-03-15T12:34:56Z', '2026-03-15T12:40:00Z'],
  ])('%s after %s is %s', (expression, after, expected) => {
    expect(iso(parseNcrontab(expression).next(new Date(after)))).toBe(expected);
  });

  it('counts in UTC, whatever the process time zone', () => {
    // TZ is read when a process starts, so ask a process in UTC+14, where 2026-03-15T23:30Z is
    // already the 16th (and 09:00 UTC is 23:00 local).
    const script = `
      const { parseNcrontab } = require('./shared/schedule/ncrontab');
      console.log(JSON.stringify([
        new Date('2026-03-15T23:30:00Z').getDate(),
        parseNcrontab('0 0 0 16 * *').next(new Date('2026-03-15T23:30:00Z')),
        parseNcrontab('0 0 9 * * *').next(new Date('2026-07-01T00:00:00Z')),
      ]));`;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: join(__dirname, '..', '..', '..'),
      encoding: 'utf8',
      env: { ...process.env, TZ: 'Pacific/Kiritimati' },
    });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual([
      16, // the child's local day: the time zone took
      '2026-03-16T00:00:00.000Z',
      '2026-07-01T09:00:00.000Z',
    ]);
  });

  it('refuses an invalid date', () => {
    expect(() => parseNcrontab('0 */10 * * * *').next(new Date(Number.NaN))).toThrow(RangeError);
  });
});

describe('parseNcrontab: day and day-of-week must both match (NCrontab, not Vixie cron)', () => {
  /** Every UTC midnight of 2026-2027 for which `test` holds, in order. */
  const days = (test: (day: Date) => boolean) => {
    const found: string[] = [];
    for (let t = Date.UTC(2026, 0, 1); t < Date.UTC(2028, 0, 1); t += 86_400_000) {
      if (test(new Date(t))) found.push(new Date(t).toISOString().slice(0, 10));
    }
    return found;
  };

  const occurrences = (expression: string, until: string) => {
    const schedule = parseNcrontab(expression);
    const found: string[] = [];
    for (let at = schedule.next(new Date('2026-01-01T00:00:00Z')); at && at < new Date(until);) {
      found.push(at.toISOString().slice(0, 10));
      at = schedule.next(at);
    }
    return found;
  };

  it('0 0 9 1 * MON fires only on the 1st of months that are Mondays', () => {
    const fired = occurrences('0 0 9 1 * MON', '2028-01-01T00:00:00Z');
    expect(fired).toEqual(['2026-06-01', '2027-02-01', '2027-03-01', '2027-11-01']);
    expect(fired).toEqual(days((d) => d.getUTCDate() === 1 && d.getUTCDay() === 1));
    // With "either" (croner's default) it would also fire on 2026-01-01, a Thursday, and every Monday.
    expect(fired).not.toContain('2026-01-01');
    expect(fired).not.toContain('2026-01-05');
  });

  it('0 0 0 13 * 5 is midnight of every Friday the 13th', () => {
    const fired = occurrences('0 0 0 13 * 5', '2028-01-01T00:00:00Z');
    expect(fired).toEqual(['2026-02-13', '2026-03-13', '2026-11-13', '2027-08-13']);
    expect(fired).toEqual(days((d) => d.getUTCDate() === 13 && d.getUTCDay() === 5));
  });

  it('agrees with a second-by-second search', () => {
    // An independent, slow reference: step one second at a time and test each field.
    const matches = (at: Date) =>
      at.getUTCSeconds() % 20 === 5 &&
      [0, 30].includes(at.getUTCMinutes()) &&
      at.getUTCHours() >= 22 &&
      [1, 2, 3, 4, 5].includes(at.getUTCDay()) &&
      at.getUTCDate() >= 28;
    const schedule = parseNcrontab('5/20 0,30 22-23 28-31 * Mon-Fri');
    let reference = new Date('2026-01-01T00:00:00Z');
    let fast: Date | undefined = reference;
    for (let i = 0; i < 12; i++) {
      do reference = new Date(reference.getTime() + 1000);
      while (!matches(reference));
      fast = schedule.next(fast ?? reference);
      expect(iso(fast)).toBe(iso(reference));
    }
  });
});

describe('parseNcrontab: invalid expressions', () => {
  it.each<[string, RegExp]>([
    // Five fields (Vixie cron, no seconds), seven (with a year), none, a nickname, a TimeSpan.
    ['*/10 * * * *', /has 5 fields; it needs six fields "\{second\} \{minute\}/],
    ['0 0 9 * * 1-5 2026', /has 7 fields/],
    ['', /has 0 fields/],
    ['@daily', /has 1 field;/],
    ['00:05:00', /has 1 field;/],
    // Out of range.
    ['60 * * * * *', /Invalid value for second: 60\.$/],
    ['0 60 * * * *', /Invalid value for minute: 60/],
    ['0 0 24 * * *', /Invalid value for hour: 24/],
    ['0 0 0 0 * *', /Invalid value for day/],
    ['0 0 0 32 * *', /Invalid value for day/],
    ['0 0 0 * 13 *', /Invalid value for month/],
    ['0 0 0 * 0 *', /Invalid value for month/],
    // Bad steps, ranges, lists, names.
    ['*/0 * * * * *', /stepping/],
    ['0 */x * * * *', /"\*\/x" is not an NCRONTAB field/],
    ['0 0 1-5/-1 * * *', /range with stepping/],
    ['0 0 5-2 * * *', /larger than/],
    ['0 0 0 1,,2 * *', /empty/],
    ['0 0 0 * Foo *', /illegal characters/],
    ['0 0 0 * * Mo', /"Mo" is not an NCRONTAB field/],
    ['0 0 0 Mon * *', /illegal characters/],
    ['a b c d e f', /"a" is not an NCRONTAB field/],
    ['0 0 0 ? * *', /"\?" is not an NCRONTAB field/],
    // croner's extensions that Azure refuses.
    ['0 0 0 L * *', /"L" is not an NCRONTAB field/],
    ['0 0 0 1W * *', /"1W" is not an NCRONTAB field/],
    ['0 0 0 * * 5#2', /"5#2" is not an NCRONTAB field/],
    ['0 0 0 * * 5L', /"5L" is not an NCRONTAB field/],
    // No date ever matches.
    ['0 0 0 30 2 *', /never fires/],
    ['0 0 0 31 4,6,9,11 *', /never fires/],
  ])('%j is refused: %s', (expression, message) => {
    expect(() => parseNcrontab(expression)).toThrow(RangeError);
    expect(() => parseNcrontab(expression)).toThrow(/^Invalid NCRONTAB expression "/);
    expect(() => parseNcrontab(expression)).toThrow(message);
  });
});
