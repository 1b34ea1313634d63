/**
 * The Functions timer trigger's schedule language, so the local host (no Core Tools) fires the refresh
 * timer on the same occurrences as Azure does. Azure evaluates NCRONTAB with the NCrontab library;
 * where cron dialects differ this follows NCrontab, so an expression means the same here and there:
 *
 *  - Six fields, `{second} {minute} {hour} {day} {month} {day-of-week}`, always in UTC (Azure's
 *    default; WEBSITE_TIME_ZONE is not supported here).
 *  - Each field: `*`, a value, a range `a-b`, a step `*\/n`, `a-b/n` or `a/n` (= `a-max/n`), or a
 *    comma list of those. Ranges: second and minute 0-59, hour 0-23, day 1-31, month 1-12,
 *    day-of-week 0-6 (0 = Sunday; 7 is refused, as Azure refuses it).
 *  - Month and day-of-week also take names, case-insensitive: at least the first three letters of
 *    the English name (`Jan`, `january`, `Mon`, `Tues`), also inside ranges (`Mon-Fri`).
 *  - Day and day-of-week are BOTH required to match (NCrontab's rule, not Vixie cron's "either"):
 *    `0 0 0 13 * 5` is midnight of every Friday the 13th. A day that a month lacks is skipped
 *    (`0 0 0 31 * *` fires only in 31-day months); an expression no date can ever satisfy
 *    (`0 0 0 30 2 *`) is refused.
 *  - A TimeSpan `hh:mm:ss` or `d.hh:mm:ss` (which Azure accepts on App Service plans) is a fixed
 *    interval: the next occurrence is that long after the time asked about.
 */

/** When a timer fires. */
export interface Schedule {
  /** The expression as given. */
  readonly expression: string;
  /** The first occurrence strictly after `after` (whole seconds, UTC). */
  next(after: Date): Date;
}

interface FieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

const MONTH_NAMES = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];
const DAY_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

const FIELDS: readonly FieldSpec[] = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTH_NAMES },
  { name: 'day-of-week', min: 0, max: 6, names: DAY_NAMES },
];

const FORMAT =
  'six fields "{second} {minute} {hour} {day} {month} {day-of-week}" (e.g. "0 */10 * * * *") or a TimeSpan "hh:mm:ss"';

/** Longest days of each month (February in a leap year). */
const MAX_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function invalid(expression: string, reason: string): RangeError {
  return new RangeError(`Invalid NCRONTAB expression "${expression}": ${reason}.`);
}

function parseValue(text: string, spec: FieldSpec, fail: (reason: string) => RangeError): number {
  if (/^\d+$/.test(text)) {
    const value = Number(text);
    if (value < spec.min || value > spec.max) {
      throw fail(`${text} is out of range (${spec.min}-${spec.max})`);
    }
    return value;
  }
  if (spec.names && /^[a-z]{3,}$/i.test(text)) {
    const index = spec.names.findIndex((name) => name.startsWith(text.toLowerCase()));
    if (index >= 0) return spec.min + index;
  }
  throw fail(
    spec.names
      ? `"${text}" is neither a number (${spec.min}-${spec.max}) nor a ${spec.name} name such as "${spec.names[1]?.slice(0, 3) ?? ''}"`
      : `"${text}" is not a number (${spec.min}-${spec.max})`,
  );
}

/** The values a field allows, ascending. */
function parseField(text: string, spec: FieldSpec, expression: string): number[] {
  const fail = (reason: string) => invalid(expression, `the ${spec.name} field "${text}": ${reason}`);
  const allowed = new Set<number>();
  for (const item of text.split(',')) {
    if (item === '') throw fail('an empty list item');
    const slash = item.indexOf('/');
    const base = slash < 0 ? item : item.slice(0, slash);
    let step = 1;
    if (slash >= 0) {
      const stepText = item.slice(slash + 1);
      step = /^\d+$/.test(stepText) ? Number(stepText) : Number.NaN;
      if (!(step >= 1)) throw fail(`the step "${stepText}" is not a whole number of at least 1`);
    }
    let first: number;
    let last: number;
    if (base === '*') {
      first = spec.min;
      last = spec.max;
    } else {
      const dash = base.indexOf('-');
      if (dash < 0) {
        first = parseValue(base, spec, fail);
        last = slash < 0 ? first : spec.max;
      } else {
        first = parseValue(base.slice(0, dash), spec, fail);
        last = parseValue(base.slice(dash + 1), spec, fail);
        if (first > last) throw fail(`the range ${base} runs backwards`);
      }
    }
    for (let value = first; value <= last; value += step) allowed.add(value);
  }
  return [...allowed].sort((a, b) => a - b);
}

/** The smallest allowed value at or above `from`, or undefined. */
function atOrAfter(values: readonly number[], from: number): number | undefined {
  return values.find((value) => value >= from);
}

class CronSchedule implements Schedule {
  private readonly fields: {
    seconds: number[];
    minutes: number[];
    hours: number[];
    days: Set<number>;
    months: number[];
    weekdays: Set<number>;
  };

  constructor(
    readonly expression: string,
    values: number[][],
  ) {
    const [seconds = [], minutes = [], hours = [], days = [], months = [], weekdays = []] = values;
    this.fields = {
      seconds,
      minutes,
      hours,
      days: new Set(days),
      months,
      weekdays: new Set(weekdays),
    };
    if (!months.some((month) => days.some((day) => day <= (MAX_DAYS[month - 1] ?? 0)))) {
      throw invalid(expression, 'the day and month fields select no date that exists, so it never fires');
    }
  }

  next(after: Date): Date {
    const start = after.getTime();
    if (Number.isNaN(start)) throw new RangeError('Schedule.next needs a valid date.');
    const { seconds, minutes, hours, days, months, weekdays } = this.fields;
    const firstSecond = seconds[0] ?? 0;
    const firstMinute = minutes[0] ?? 0;
    const firstHour = hours[0] ?? 0;
    // Whole seconds strictly after `after`.
    let t = Math.floor(start / 1000) * 1000 + 1000;
    const lastYear = new Date(t).getUTCFullYear() + 400; // the Gregorian calendar repeats every 400 years
    for (;;) {
      const at = new Date(t);
      const year = at.getUTCFullYear();
      const month = at.getUTCMonth() + 1;
      const day = at.getUTCDate();
      if (year > lastYear)
        throw new Error(`"${this.expression}" has no occurrence after ${after.toISOString()}.`);

      const nextMonth = atOrAfter(months, month);
      if (nextMonth !== month) {
        // Date.UTC carries a month past December into the next year.
        t = Date.UTC(year, (nextMonth ?? (months[0] ?? 1) + 12) - 1, 1, firstHour, firstMinute, firstSecond);
        continue;
      }
      if (!days.has(day) || !weekdays.has(at.getUTCDay())) {
        t = Date.UTC(year, month - 1, day + 1, firstHour, firstMinute, firstSecond);
        continue;
      }
      const hour = at.getUTCHours();
      const nextHour = atOrAfter(hours, hour);
      if (nextHour === undefined) {
        t = Date.UTC(year, month - 1, day + 1, firstHour, firstMinute, firstSecond);
        continue;
      }
      if (nextHour !== hour) {
        t = Date.UTC(year, month - 1, day, nextHour, firstMinute, firstSecond);
        continue;
      }
      const minute = at.getUTCMinutes();
      const nextMinute = atOrAfter(minutes, minute);
      if (nextMinute === undefined) {
        t = Date.UTC(year, month - 1, day, hour + 1, firstMinute, firstSecond);
        continue;
      }
      if (nextMinute !== minute) {
        t = Date.UTC(year, month - 1, day, hour, nextMinute, firstSecond);
        continue;
      }
      const nextSecond = atOrAfter(seconds, at.getUTCSeconds());
      if (nextSecond === undefined) {
        t = Date.UTC(year, month - 1, day, hour, minute + 1, firstSecond);
        continue;
      }
      return new Date(Date.UTC(year, month - 1, day, hour, minute, nextSecond));
    }
  }
}

class IntervalSchedule implements Schedule {
  constructor(
    readonly expression: string,
    private readonly intervalMs: number,
  ) {}

  next(after: Date): Date {
    const start = after.getTime();
    if (Number.isNaN(start)) throw new RangeError('Schedule.next needs a valid date.');
    return new Date(start + this.intervalMs);
  }
}

const TIME_SPAN = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$/;

function parseTimeSpan(expression: string, match: RegExpExecArray): Schedule {
  const [, days = '0', hours = '0', minutes = '0', seconds = '0'] = match;
  if (Number(hours) > 23 || Number(minutes) > 59 || Number(seconds) > 59) {
    throw invalid(expression, 'a TimeSpan "hh:mm:ss" needs hours 0-23, minutes and seconds 0-59');
  }
  const ms = (((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60 + Number(seconds)) * 1000;
  if (ms <= 0) throw invalid(expression, 'a TimeSpan interval must be longer than zero');
  return new IntervalSchedule(expression, ms);
}

/**
 * Parses a timer trigger schedule (see the module comment for the language).
 * @throws RangeError naming the field and the problem when the expression is invalid.
 */
export function parseNcrontab(expression: string): Schedule {
  const trimmed = expression.trim();
  const timeSpan = TIME_SPAN.exec(trimmed);
  if (timeSpan) return parseTimeSpan(expression, timeSpan);
  const parts = trimmed === '' ? [] : trimmed.split(/\s+/);
  if (parts.length !== FIELDS.length) {
    throw invalid(
      expression,
      `it has ${parts.length} field${parts.length === 1 ? '' : 's'}; it needs ${FORMAT}`,
    );
  }
  return new CronSchedule(
    expression,
    FIELDS.map((spec, i) => parseField(parts[i] ?? '', spec, expression)),
  );
}
