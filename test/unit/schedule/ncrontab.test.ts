import { parseNcrontab } from '../../../shared/schedule/ncrontab';

const iso = (date: Date) => date.toISOString().replace('.000Z', 'Z');

describe('parseNcrontab: next occurrence (UTC)', () => {
  it.each<[string, string, string]>([
    // [expression, after, expected next]
    ['0 */10 * * * *', '2026-03-15T12:34:56Z', '2026-03-15T12:40:00Z'],
    ['0 */10 * * * *', '2026-03-15T12:40:00Z', '2026-03-15T12:50:00Z'],
    ['0 */10 * * * *', '2026-03-15T12:39:59.999Z', '2026-03-15T12:40:00Z'],
    ['0 */10 * * * *', '2026-12-31T23:55:00Z', '2027-01-01T00:00:00Z'],
    ['0 0 * * * *', '2026-03-15T12:00:00Z', '2026-03-15T13:00:00Z'],
    ['0 0 * * * *', '2026-03-15T23:30:00Z', '2026-03-16T00:00:00Z'],
    // 2026-01-01 is a Thursday.
    ['30 15 9 * * 1-5', '2026-01-01T08:00:00Z', '2026-01-01T09:15:30Z'],
    ['30 15 9 * * 1-5', '2026-01-01T09:15:30Z', '2026-01-02T09:15:30Z'],
    ['30 15 9 * * 1-5', '2026-01-02T09:15:30Z', '2026-01-05T09:15:30Z'],
    ['30 15 9 * * Mon-Fri', '2026-01-03T00:00:00Z', '2026-01-05T09:15:30Z'],
    ['0 0 0 1 * *', '2026-01-15T10:00:00Z', '2026-02-01T00:00:00Z'],
    ['0 0 0 1 * *', '2026-12-01T00:00:00Z', '2027-01-01T00:00:00Z'],
    ['*/15 * * * * *', '2026-03-15T10:00:14.500Z', '2026-03-15T10:00:15Z'],
    ['*/15 * * * * *', '2026-03-15T10:00:45Z', '2026-03-15T10:01:00Z'],
    ['* * * * * *', '2026-03-15T12:34:56.789Z', '2026-03-15T12:34:57Z'],
    ['5/20 * * * * *', '2026-03-15T10:00:45Z', '2026-03-15T10:01:05Z'],
    ['0 0 9-17/4 * * *', '2026-03-15T13:00:00Z', '2026-03-15T17:00:00Z'],
    ['0 0 9-17/4 * * *', '2026-03-15T17:00:00Z', '2026-03-16T09:00:00Z'],
    ['0 30 8,12,18 * * *', '2026-03-15T12:30:01Z', '2026-03-15T18:30:00Z'],
    // Day-of-week edges: 0 is Sunday, 6 is Saturday.
    ['0 0 0 * * 0', '2026-01-03T12:00:00Z', '2026-01-04T00:00:00Z'],
    ['0 0 0 * * Sun', '2026-01-04T00:00:00Z', '2026-01-11T00:00:00Z'],
    ['0 0 0 * * 6', '2026-01-03T00:00:00Z', '2026-01-10T00:00:00Z'],
    ['0 0 0 * * saturday', '2026-01-01T00:00:00Z', '2026-01-03T00:00:00Z'],
    // Day and day-of-week must both match (NCrontab): Friday the 13th.
    ['0 0 0 13 * 5', '2026-01-01T00:00:00Z', '2026-02-13T00:00:00Z'],
    ['0 0 0 13 * Fri', '2026-02-13T00:00:00Z', '2026-03-13T00:00:00Z'],
    // Months: names, lists, days a month lacks.
    ['0 0 0 1 Jan,Jul *', '2026-02-01T00:00:00Z', '2026-07-01T00:00:00Z'],
    ['0 0 0 1 jul-aug *', '2026-08-01T00:00:00Z', '2027-07-01T00:00:00Z'],
    ['0 0 0 31 * *', '2026-01-31T00:00:00Z', '2026-03-31T00:00:00Z'],
    ['0 0 0 31 * *', '2026-05-31T00:00:00Z', '2026-07-31T00:00:00Z'],
    ['0 0 0 * 2 *', '2026-02-28T00:00:00Z', '2027-02-01T00:00:00Z'],
    ['0 0 0 * 2 *', '2028-02-28T00:00:00Z', '2028-02-29T00:00:00Z'],
    ['0 0 0 30,31,1 2 *', '2026-02-01T00:00:00Z', '2027-02-01T00:00:00Z'],
    // Feb 29: leap years only, and 2100 is not one.
    ['0 0 12 29 2 *', '2025-03-01T00:00:00Z', '2028-02-29T12:00:00Z'],
    ['0 0 12 29 2 *', '2028-02-29T12:00:00Z', '2032-02-29T12:00:00Z'],
    ['0 0 12 29 Feb *', '2096-03-01T00:00:00Z', '2104-02-29T12:00:00Z'],
    // Year rollover.
    ['59 59 23 31 12 *', '2026-12-31T23:59:59Z', '2027-12-31T23:59:59Z'],
    ['0 0 0 * * *', '2026-12-31T12:00:00Z', '2027-01-01T00:00:00Z'],
    ['0 0 0 1 1 *', '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z'],
    // Extra whitespace is fine.
    ['  0  */10 *\t* * *  ', '2026-03-15T12:34:56Z', '2026-03-15T12:40:00Z'],
  ])('%s after %s is %s', (expression, after, expected) => {
    expect(iso(parseNcrontab(expression).next(new Date(after)))).toBe(expected);
  });

  it('lists consecutive occurrences', () => {
    const schedule = parseNcrontab('0 0 0 * * 1,3');
    const occurrences: string[] = [];
    let at = new Date('2026-01-01T00:00:00Z');
    for (let i = 0; i < 5; i++) {
      at = schedule.next(at);
      occurrences.push(iso(at));
    }
    expect(occurrences).toEqual([
      '2026-01-05T00:00:00Z',
      '2026-01-07T00:00:00Z',
      '2026-01-12T00:00:00Z',
      '2026-01-14T00:00:00Z',
      '2026-01-19T00:00:00Z',
    ]);
  });

  it.each<[string, string, string]>([
    ['00:05:00', '2026-03-15T12:34:56.789Z', '2026-03-15T12:39:56.789Z'],
    ['1:00:00', '2026-03-15T23:30:00.000Z', '2026-03-16T00:30:00.000Z'],
    ['1.00:00:00', '2026-03-15T12:00:00.000Z', '2026-03-16T12:00:00.000Z'],
  ])('TimeSpan %s after %s is %s', (expression, after, expected) => {
    expect(parseNcrontab(expression).next(new Date(after)).toISOString()).toBe(expected);
  });

  it('keeps the expression as given', () => {
    expect(parseNcrontab('0 */10 * * * *').expression).toBe('0 */10 * * * *');
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
    let fast = reference;
    for (let i = 0; i < 12; i++) {
      do reference = new Date(reference.getTime() + 1000);
      while (!matches(reference));
      fast = schedule.next(fast);
      expect(iso(fast)).toBe(iso(reference));
    }
  });
});

describe('parseNcrontab: invalid expressions', () => {
  it.each<[string, RegExp]>([
    ['0 */10 * * *', /has 5 fields; it needs six fields "\{second\} \{minute\}/],
    ['0 0 0 * * * *', /has 7 fields/],
    ['', /has 0 fields/],
    ['60 * * * * *', /the second field "60": 60 is out of range \(0-59\)/],
    ['0 60 * * * *', /the minute field "60": 60 is out of range/],
    ['0 0 24 * * *', /the hour field "24": 24 is out of range \(0-23\)/],
    ['0 0 0 0 * *', /the day field "0": 0 is out of range \(1-31\)/],
    ['0 0 0 32 * *', /the day field "32"/],
    ['0 0 0 * 13 *', /the month field "13": 13 is out of range \(1-12\)/],
    ['0 0 0 * * 7', /the day-of-week field "7": 7 is out of range \(0-6\)/],
    ['*/0 * * * * *', /the second field "\*\/0": the step "0" is not a whole number/],
    ['0 */x * * * *', /the minute field "\*\/x": the step "x"/],
    ['0 */ * * * *', /the minute field "\*\/": the step ""/],
    ['0 0 1-5/-1 * * *', /the hour field .*the step "-1"/],
    ['0 0 5-2 * * *', /the hour field "5-2": the range 5-2 runs backwards/],
    ['0 0 0 1,,2 * *', /the day field "1,,2": an empty list item/],
    ['0 0 0 * Foo *', /the month field "Foo": "Foo" is neither a number \(1-12\) nor a month name/],
    ['0 0 0 * * Mo', /the day-of-week field "Mo"/],
    ['0 0 0 Mon * *', /the day field "Mon": "Mon" is not a number/],
    ['a b c d e f', /the second field "a"/],
    ['0 0 0 30 2 *', /select no date that exists/],
    ['0 0 0 31 4,6,9,11 *', /select no date that exists/],
    ['25:00:00', /TimeSpan/],
    ['00:00:00', /longer than zero/],
  ])('%j is refused: %s', (expression, message) => {
    expect(() => parseNcrontab(expression)).toThrow(RangeError);
    expect(() => parseNcrontab(expression)).toThrow(message);
  });
});
