// Recurrence-rule arithmetic for recurring tasks: a subset of RFC 5545 RRULE, enough for
// "every weekday", "the last Friday of the month" or "every 3 days after I finish it".
//
// rrule-temporal expands the rule, but in a real time zone it drops an occurrence whose local
// time falls into a DST gap, where RFC 5545 (3.3.10, by way of 3.3.5) says to shift it by the
// gap instead. So the rule runs on floating wall-clock time (a 'UTC' ZonedDateTime whose fields
// are the local wall clock, which has no DST), and each result is placed in the task's zone
// here, with Temporal's 'compatible' disambiguation: a nonexistent time takes the offset before
// the gap, an ambiguous one the earlier instant, both as RFC 5545 asks.

import { RRuleTemporal } from 'rrule-temporal';
import { Temporal } from 'temporal-polyfill';

export type RecurrenceBasis = 'due' | 'completion';

export interface RuleProblem {
  part: string;
  message: string;
}

export type RuleCheck = { ok: true; rule: string } | { ok: false; problems: RuleProblem[] };

export interface Occurrence {
  /** The instant, RFC 3339 UTC to the second: 'YYYY-MM-DDTHH:MM:SSZ'. */
  due: string;
  /** Its local wall clock as the rule produced it, before a DST gap shifted it: 'YYYY-MM-DDTHH:MM:SS'. */
  anchor: string;
}

const FREQUENCIES = ['DAILY', 'WEEKLY', 'MONTHLY', 'YEARLY'] as const;
type Frequency = (typeof FREQUENCIES)[number];

const WEEKDAYS = ['MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU'] as const;
type Weekday = (typeof WEEKDAYS)[number];

type Until = { kind: 'date'; date: Temporal.PlainDate } | { kind: 'instant'; instant: Temporal.Instant };

interface Rule {
  freq: Frequency;
  interval: number;
  byMonth?: number[];
  byMonthDay?: number[];
  byDay?: string[];
  bySetPos?: number[];
  wkst?: Weekday;
  count?: number;
  until?: Until;
}

const SUPPORTED_PARTS = ['FREQ', 'INTERVAL', 'BYMONTH', 'BYMONTHDAY', 'BYDAY', 'BYSETPOS', 'WKST', 'COUNT', 'UNTIL'] as const;
type SupportedPart = (typeof SUPPORTED_PARTS)[number];

const WEEKDAY_HELP = 'use MO, TU, WE, TH, FR, SA or SU';
const BYDAY_HELP = `${WEEKDAY_HELP}, with a number before it for "the last Friday" (-1FR) in a monthly rule`;

// Parts of RFC 5545 (or of iCalendar around it) that a task cannot use, each with what to do instead.
const REFUSED_PARTS: Record<string, string> = {
  BYHOUR: 'not supported: a task repeats at most daily, at the time of day of its due date; remove BYHOUR',
  BYMINUTE: 'not supported: a task repeats at most daily, at the time of day of its due date; remove BYMINUTE',
  BYSECOND: 'not supported: a task repeats at most daily, at the time of day of its due date; remove BYSECOND',
  BYYEARDAY: 'not supported; name the date with BYMONTH and BYMONTHDAY instead (e.g. BYMONTH=3;BYMONTHDAY=1)',
  BYWEEKNO: 'not supported; use FREQ=WEEKLY with INTERVAL, or BYMONTH with BYDAY, instead',
  RDATE: 'not a rule part (RDATE is a property of its own); repeat with FREQ and the BY parts instead',
  EXDATE: 'not a rule part (EXDATE is a property of its own); remove it',
  DTSTART: "not a rule part: the series starts at the task's due date; remove DTSTART",
  RSCALE: 'not supported: rules use the Gregorian calendar; remove RSCALE',
  SKIP: 'not supported: a date a month lacks (e.g. the 31st) is left out; remove SKIP',
};

// The library gives up after a number of periods (days, weeks, months or years) without a match,
// so a rule that can never match costs milliseconds, not a scan of ten thousand years.
// A yearly rule needs no more than 400: the Gregorian calendar repeats itself every 400 years, so
// one that has not matched by then never will (and 2 000 years of a rule with every BYDAY took
// 107 ms of CPU to say so, 21 ms at 400).
const MAX_YEARS = 400;
// A daily or weekly rule, which names no day of the month, falls on a date at least once a year
// (BYMONTH and BYDAY are the most it can narrow to): a little over a year of periods is enough.
const MAX_DAYS = 400;
const MAX_WEEKS = 60;
// A monthly rule's rarest date, 29 February on a Monday, comes every 28 years, or 40 across 2100.
const MAX_MONTHS = 600;
// And however the BY parts multiply the days looked at, no more than this many are: a rule that
// needs more is refused (about 20 ms of CPU at most), not expanded for seconds.
const MAX_CANDIDATES = 20_000;

// ---------------------------------------------------------------------------------------------
// Parsing and checking

// A part written without "=" is named (so it is not also reported missing) but has no value.
interface PartValues {
  values: Map<SupportedPart, string>;
  named: Set<string>;
}

/** Validates a rule string of the supported subset; on success the canonical form. */
export function checkRule(rule: string): RuleCheck {
  const parsed = parseRule(rule);
  return 'rule' in parsed ? { ok: true, rule: canonical(parsed.rule) } : { ok: false, problems: parsed.problems };
}

function parseRule(text: string): { rule: Rule } | { problems: RuleProblem[] } {
  const problems: RuleProblem[] = [];
  const values = splitParts(text, problems);
  const rule = values && readParts(values, problems);
  return rule && problems.length === 0 ? { rule } : { problems };
}

function splitParts(text: string, problems: RuleProblem[]): PartValues | undefined {
  const body = text.trim().replace(/^RRULE:/i, '');
  const segments = body
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (segments.length === 0) {
    problems.push({ part: 'rule', message: 'The rule is empty; write at least FREQ, e.g. FREQ=WEEKLY;BYDAY=MO' });
    return undefined;
  }
  const parts: PartValues = { values: new Map(), named: new Set() };
  for (const segment of segments) addSegment(segment, parts, problems);
  return parts;
}

function addSegment(segment: string, { values, named }: PartValues, problems: RuleProblem[]): void {
  const eq = segment.indexOf('=');
  const written = (eq < 0 ? segment : segment.slice(0, eq)).trim();
  const name = written.toUpperCase();
  named.add(name);
  if (eq < 0) {
    // Quoted as written (a sentence such as "every other monday" lands here), cut short.
    const quoted = JSON.stringify(written.length > 40 ? `${written.slice(0, 40)}…` : written);
    problems.push({ part: name, message: `${quoted} has no "=" and value; write each part as NAME=VALUE, e.g. FREQ=DAILY` });
    return;
  }
  const value = segment
    .slice(eq + 1)
    .trim()
    .toUpperCase();
  if (!isSupportedPart(name)) {
    problems.push({ part: name || 'rule', message: unsupportedPartMessage(name) });
    return;
  }
  if (values.has(name)) {
    problems.push({ part: name, message: `${name} is given more than once; give each part once` });
    return;
  }
  values.set(name, value);
}

function isSupportedPart(name: string): name is SupportedPart {
  return (SUPPORTED_PARTS as readonly string[]).includes(name);
}

function unsupportedPartMessage(name: string): string {
  if (name === '') return `A part has no name before "="; write each part as NAME=VALUE, e.g. FREQ=DAILY`;
  const refusal = REFUSED_PARTS[name];
  if (refusal) return `${name}: ${refusal}`;
  return `${name} is not a rule part this service knows; use FREQ, INTERVAL, BYMONTH, BYMONTHDAY, BYDAY, BYSETPOS, WKST, COUNT or UNTIL`;
}

function readParts({ values, named }: PartValues, problems: RuleProblem[]): Rule | undefined {
  const freq = named.has('FREQ') && !values.has('FREQ') ? undefined : readFreq(values.get('FREQ'), problems);
  // Without a usable FREQ the other parts are still read, so that all their problems are reported too.
  const rule: Rule = { freq: freq ?? 'DAILY', interval: 1 };
  readInterval(values.get('INTERVAL'), rule, problems);
  readByMonth(values.get('BYMONTH'), rule, problems);
  readByMonthDay(values.get('BYMONTHDAY'), rule, freq, problems);
  readByDay(values.get('BYDAY'), rule, freq, problems);
  const hasOtherBy = values.has('BYDAY') || values.has('BYMONTHDAY') || values.has('BYMONTH');
  readBySetPos(values.get('BYSETPOS'), hasOtherBy, rule, freq, problems);
  checkMonthDays(rule, problems);
  checkSetPositions(rule, problems);
  readWkst(values.get('WKST'), rule, problems);
  readCount(values.get('COUNT'), rule, problems);
  readUntil(values.get('UNTIL'), rule, problems);
  if (values.has('COUNT') && values.has('UNTIL')) {
    problems.push({ part: 'COUNT', message: 'COUNT and UNTIL cannot be used together; keep COUNT (how many times) or UNTIL (until when)' });
  }
  return freq ? rule : undefined;
}

function readFreq(value: string | undefined, problems: RuleProblem[]): Frequency | undefined {
  if (value === undefined) {
    problems.push({ part: 'FREQ', message: 'FREQ is missing; add FREQ=DAILY, FREQ=WEEKLY, FREQ=MONTHLY or FREQ=YEARLY' });
    return undefined;
  }
  if ((FREQUENCIES as readonly string[]).includes(value)) return value as Frequency;
  if (value === 'HOURLY' || value === 'MINUTELY' || value === 'SECONDLY') {
    problems.push({ part: 'FREQ', message: `FREQ=${value} is not supported: a task repeats at most daily; use FREQ=DAILY` });
  } else {
    problems.push({ part: 'FREQ', message: `FREQ: "${value}" is not a frequency; use DAILY, WEEKLY, MONTHLY or YEARLY` });
  }
  return undefined;
}

function readInterval(value: string | undefined, rule: Rule, problems: RuleProblem[]): void {
  if (value === undefined) return;
  const n = integer(value);
  if (n === undefined || n < 1 || n > 1000) {
    problems.push({
      part: 'INTERVAL',
      message: `INTERVAL: "${value}" is not a whole number from 1 to 1000 (INTERVAL=2 is every other one)`,
    });
  } else {
    rule.interval = n;
  }
}

function readByMonth(value: string | undefined, rule: Rule, problems: RuleProblem[]): void {
  if (value === undefined) return;
  rule.byMonth = readNumberList('BYMONTH', value, problems, (n) => n >= 1 && n <= 12, 'a month number from 1 (January) to 12 (December)');
}

function readByMonthDay(value: string | undefined, rule: Rule, freq: Frequency | undefined, problems: RuleProblem[]): void {
  if (value === undefined) return;
  if (freq === 'WEEKLY') {
    problems.push({
      part: 'BYMONTHDAY',
      message: 'BYMONTHDAY cannot be used with FREQ=WEEKLY; use FREQ=MONTHLY for days of the month, or BYDAY for days of the week',
    });
    return;
  }
  // A daily rule that names days of the month is a monthly or yearly rule written the costly way:
  // it is searched day by day, and "29 February" that way means scanning years of days.
  if (freq === 'DAILY') {
    problems.push({
      part: 'BYMONTHDAY',
      message:
        'BYMONTHDAY cannot be used with FREQ=DAILY; use FREQ=MONTHLY;BYMONTHDAY=… (or FREQ=YEARLY;BYMONTH=…;BYMONTHDAY=… for a date of the year)',
    });
    return;
  }
  rule.byMonthDay = readNumberList(
    'BYMONTHDAY',
    value,
    problems,
    (n) => n !== 0 && n >= -31 && n <= 31,
    'a day of the month from 1 to 31, or -1 (the last day) to -31',
  );
}

// The longest each month can be (February in a leap year).
const MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** BYMONTHDAY days that none of the BYMONTH months has (February 30th) are refused without expanding anything. */
function checkMonthDays(rule: Rule, problems: RuleProblem[]): void {
  if (!rule.byMonth?.length || !rule.byMonthDay?.length) return;
  const longest = Math.max(...rule.byMonth.map((m) => MONTH_DAYS[m - 1] ?? 31));
  if (rule.byMonthDay.every((d) => Math.abs(d) > longest)) {
    problems.push({
      part: 'BYMONTHDAY',
      message: `no month in BYMONTH has day ${rule.byMonthDay.map(Math.abs).join(' or ')}: the longest has ${longest} days`,
    });
  }
}

/**
 * The most days the BY parts can select in one period: a BYSETPOS beyond it never picks a day, and
 * the library would only find that out by scanning every period it may (0.4 s for
 * FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA;BYSETPOS=7). An upper bound, never too small.
 */
function mostSelected(rule: Rule): number {
  const ordinal = (d: string) => /^[+-]?\d/.test(d);
  const months = rule.byMonth?.length ?? 12;
  switch (rule.freq) {
    case 'DAILY':
      return 1;
    case 'WEEKLY':
      return rule.byDay ? new Set(rule.byDay.map((d) => d.slice(-2))).size : 1;
    case 'MONTHLY': {
      const byDays = rule.byDay?.reduce((n, d) => n + (ordinal(d) ? 1 : 5), 0);
      const byMonthDays = rule.byMonthDay?.length;
      return Math.min(byDays ?? 31, byMonthDays ?? 31, byDays === undefined && byMonthDays === undefined ? 1 : 31);
    }
    case 'YEARLY': {
      const perMonth = rule.byMonth !== undefined;
      const byDays = rule.byDay?.reduce((n, d) => n + (ordinal(d) ? (perMonth ? months : 1) : perMonth ? 5 * months : 53), 0);
      const byMonthDays = rule.byMonthDay ? rule.byMonthDay.length * months : undefined;
      if (byDays === undefined && byMonthDays === undefined) return perMonth ? months : 1;
      return Math.min(byDays ?? 366, byMonthDays ?? 366, 366);
    }
  }
}

function checkSetPositions(rule: Rule, problems: RuleProblem[]): void {
  if (!rule.bySetPos) return;
  const most = mostSelected(rule);
  const beyond = rule.bySetPos.filter((n) => Math.abs(n) > most);
  if (beyond.length) {
    const period = { DAILY: 'day', WEEKLY: 'week', MONTHLY: 'month', YEARLY: 'year' }[rule.freq];
    problems.push({
      part: 'BYSETPOS',
      message: `BYSETPOS ${beyond.join(', ')} can never pick a day: the other parts select at most ${most} in a ${period}`,
    });
  }
}

// The most days one period of each frequency holds: a BYSETPOS past it can never pick a day, and
// finding that out by expanding the rule took half a second of CPU (BYSETPOS=8 in a weekly rule).
const DAYS_PER_PERIOD: Record<Frequency, number> = { DAILY: 1, WEEKLY: 7, MONTHLY: 31, YEARLY: 366 };

function readBySetPos(
  value: string | undefined,
  hasOtherBy: boolean,
  rule: Rule,
  freq: Frequency | undefined,
  problems: RuleProblem[],
): void {
  if (value === undefined) return;
  if (!hasOtherBy) {
    problems.push({
      part: 'BYSETPOS',
      message:
        'BYSETPOS picks among the days another BY part selects, so it needs BYDAY, BYMONTHDAY or BYMONTH too (e.g. BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1 for the last weekday)',
    });
    return;
  }
  const most = DAYS_PER_PERIOD[freq ?? 'YEARLY'];
  rule.bySetPos = readNumberList(
    'BYSETPOS',
    value,
    problems,
    (n) => n !== 0 && n >= -most && n <= most,
    most === 1
      ? "1 or -1 (a daily rule's period is one day)"
      : `a position from 1 to ${most} or -1 (the last) to -${most}: a ${freq === 'WEEKLY' ? 'week' : freq === 'MONTHLY' ? 'month' : 'year'} has no more days`,
  );
}

function readNumberList(
  part: string,
  value: string,
  problems: RuleProblem[],
  valid: (n: number) => boolean,
  expected: string,
): number[] | undefined {
  const numbers: number[] = [];
  for (const item of listItems(value)) {
    const n = integer(item);
    if (n === undefined || !valid(n)) problems.push({ part, message: `${part}: "${item}" is not ${expected}` });
    else if (!numbers.includes(n)) numbers.push(n);
  }
  return numbers.length > 0 ? numbers : undefined;
}

function readByDay(value: string | undefined, rule: Rule, freq: Frequency | undefined, problems: RuleProblem[]): void {
  if (value === undefined) return;
  const days: string[] = [];
  for (const item of listItems(value)) {
    const day = readWeekdayItem(item, freq, problems);
    if (day !== undefined && !days.includes(day)) days.push(day);
  }
  if (days.length > 0) rule.byDay = days;
}

function readWeekdayItem(item: string, freq: Frequency | undefined, problems: RuleProblem[]): string | undefined {
  const match = /^([+-]?\d+)?([A-Z]{2})$/.exec(item);
  const weekday = match?.[2];
  if (!match || weekday === undefined || !(WEEKDAYS as readonly string[]).includes(weekday)) {
    problems.push({ part: 'BYDAY', message: `BYDAY: "${item}" is not a weekday; ${BYDAY_HELP}` });
    return undefined;
  }
  if (match[1] === undefined) return weekday;
  const ordinal = Number(match[1]);
  if (ordinal === 0 || Math.abs(ordinal) > 5) {
    problems.push({
      part: 'BYDAY',
      message: `BYDAY: "${item}" has no such week; the number before the weekday is 1 to 5 (the first to the fifth) or -1 to -5 (the last to the fifth last)`,
    });
    return undefined;
  }
  if (freq !== undefined && freq !== 'MONTHLY' && freq !== 'YEARLY') {
    problems.push({
      part: 'BYDAY',
      message: `BYDAY: "${item}" numbers a weekday within a month or year, which FREQ=${freq} has not; use FREQ=MONTHLY (e.g. FREQ=MONTHLY;BYDAY=${ordinal}${weekday}), or drop the number`,
    });
    return undefined;
  }
  return `${ordinal}${weekday}`;
}

function readWkst(value: string | undefined, rule: Rule, problems: RuleProblem[]): void {
  if (value === undefined) return;
  if ((WEEKDAYS as readonly string[]).includes(value)) rule.wkst = value as Weekday;
  else problems.push({ part: 'WKST', message: `WKST: "${value}" is not a weekday; ${WEEKDAY_HELP} for the day a week starts` });
}

function readCount(value: string | undefined, rule: Rule, problems: RuleProblem[]): void {
  if (value === undefined) return;
  const n = integer(value);
  if (n === undefined || n < 1 || n > 10000) {
    problems.push({
      part: 'COUNT',
      message: `COUNT: "${value}" is not a whole number from 1 to 10000 (how many times the task happens in all)`,
    });
  } else {
    rule.count = n;
  }
}

function readUntil(value: string | undefined, rule: Rule, problems: RuleProblem[]): void {
  if (value === undefined) return;
  const until = parseUntil(value);
  if (until) rule.until = until;
  else {
    problems.push({
      part: 'UNTIL',
      message: `UNTIL: "${value}" is not a date (YYYYMMDD, e.g. 20271231, through the end of that day) or a UTC date-time (YYYYMMDDTHHMMSSZ, e.g. 20271231T230000Z)`,
    });
  }
}

function parseUntil(value: string): Until | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})Z)?$/.exec(value);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second] = match;
  try {
    const date = Temporal.PlainDate.from({ year: Number(year), month: Number(month), day: Number(day) }, { overflow: 'reject' });
    if (hour === undefined) return { kind: 'date', date };
    const time = Temporal.PlainTime.from({ hour: Number(hour), minute: Number(minute), second: Number(second) }, { overflow: 'reject' });
    return { kind: 'instant', instant: date.toZonedDateTime({ timeZone: 'UTC', plainTime: time }).toInstant() };
  } catch {
    return undefined;
  }
}

function listItems(value: string): string[] {
  return value.split(',').map((item) => item.trim());
}

function integer(text: string): number | undefined {
  return /^[+-]?\d{1,6}$/.test(text) ? Number(text) : undefined;
}

function canonical(rule: Rule): string {
  const parts = [`FREQ=${rule.freq}`];
  if (rule.interval !== 1) parts.push(`INTERVAL=${rule.interval}`);
  if (rule.byMonth) parts.push(`BYMONTH=${rule.byMonth.join(',')}`);
  if (rule.byMonthDay) parts.push(`BYMONTHDAY=${rule.byMonthDay.join(',')}`);
  if (rule.byDay) parts.push(`BYDAY=${rule.byDay.join(',')}`);
  if (rule.bySetPos) parts.push(`BYSETPOS=${rule.bySetPos.join(',')}`);
  if (rule.wkst) parts.push(`WKST=${rule.wkst}`);
  if (rule.count !== undefined) parts.push(`COUNT=${rule.count}`);
  if (rule.until) parts.push(`UNTIL=${untilText(rule.until)}`);
  return parts.join(';');
}

function untilText(until: Until): string {
  if (until.kind === 'date') return until.date.toString().replaceAll('-', '');
  return until.instant.toString({ smallestUnit: 'second' }).replace(/[-:]/g, '');
}

// ---------------------------------------------------------------------------------------------
// Time zones and wall clocks

/** Whether `tz` is an IANA time zone Temporal knows (e.g. 'Europe/Berlin', 'UTC'); not offsets like '+02:00'. */
export function isTimeZone(tz: string): boolean {
  try {
    const id = Temporal.Instant.fromEpochMilliseconds(0).toZonedDateTimeISO(tz).timeZoneId;
    // Temporal also takes an offset, or a whole date-time string and uses the zone in it; a task's
    // zone must be a name, so only a name that comes back as itself counts.
    return id.toLowerCase() === tz.toLowerCase() && !/^[+-]/.test(id);
  } catch {
    return false;
  }
}

/** The zone's name as Temporal writes it (`europe/berlin` is `Europe/Berlin`), or undefined for no IANA zone. */
export function canonicalZone(tz: string): string | undefined {
  return isTimeZone(tz) ? Temporal.Instant.fromEpochMilliseconds(0).toZonedDateTimeISO(tz).timeZoneId : undefined;
}

/** The local wall-clock date-time of an instant (RFC 3339 with Z or offset) in `tz`: 'YYYY-MM-DDTHH:MM:SS'. */
export function wallClockOf(instant: string, tz: string): string {
  return wallClockText(toInstant(instant).toZonedDateTimeISO(zone(tz)).toPlainDateTime());
}

function zone(tz: string): string {
  if (!isTimeZone(tz)) throw new RangeError(`"${tz}" is not an IANA time zone name such as Europe/Berlin or UTC`);
  return tz;
}

function toInstant(text: string): Temporal.Instant {
  try {
    // RFC 3339 allows more fractional digits than the nine Temporal reads.
    return Temporal.Instant.from(text.replace(/(\.\d{9})\d+/, '$1'));
  } catch {
    throw new RangeError(`"${text}" is not an RFC 3339 instant with Z or an offset, e.g. 2027-03-01T08:30:00Z`);
  }
}

function toWallClock(text: string): Temporal.PlainDateTime {
  // Temporal would also read a date alone, or drop an offset, which here would mean a caller mixed
  // up an instant and a wall clock.
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(text)) {
    try {
      return Temporal.PlainDateTime.from(text, { overflow: 'reject' });
    } catch {
      // falls through to the error below
    }
  }
  throw new RangeError(`"${text}" is not a local wall-clock date-time YYYY-MM-DDTHH:MM:SS, e.g. 2027-03-01T09:30:00`);
}

function wallClockText(wallClock: Temporal.PlainDateTime): string {
  return wallClock.toString({ smallestUnit: 'second' });
}

// ---------------------------------------------------------------------------------------------
// Next occurrence

/**
 * The occurrence after the current one, or undefined when the series has ended.
 * - basis 'due': the first member of the series anchored at `anchor` (the current occurrence's wall clock) whose wall clock is strictly after `anchor`.
 * - basis 'completion' (Todoist's "every!"): the series anchored at (the completion's local DATE in tz, with the time of day of `anchor`); the first member whose local date is strictly after the completion's local date.
 * - COUNT: `occurrence` is the 1-based number of the current occurrence; when occurrence >= COUNT there is no next one.
 * - UNTIL: a next occurrence whose instant is after UNTIL does not exist. UNTIL=YYYYMMDDTHHMMSSZ is a UTC instant; UNTIL=YYYYMMDD (date only) means through the end of that local day in tz (inclusive).
 */
export function nextOccurrence(input: {
  rule: string;
  timeZone: string;
  basis: RecurrenceBasis;
  anchor: string;
  completedAt: string;
  occurrence: number;
}): Occurrence | undefined {
  const rule = ruleOrThrow(input.rule);
  const tz = zone(input.timeZone);
  if (!Number.isInteger(input.occurrence) || input.occurrence < 1) {
    throw new RangeError(`occurrence must be a whole number from 1, not ${input.occurrence}`);
  }
  if (rule.count !== undefined && input.occurrence >= rule.count) return undefined;
  const anchor = toWallClock(input.anchor);
  const start = input.basis === 'due' ? anchor : completionStart(toInstant(input.completedAt), tz, anchor);
  return occurrenceAfter(rule, tz, start);
}

/** Whether the rule, anchored at `anchor` in tz, has any occurrence after it at all (for refusing a rule that can never recur). */
export function hasNext(rule: string, timeZone: string, anchor: string): boolean {
  const parsed = ruleOrThrow(rule);
  if (parsed.count !== undefined && parsed.count <= 1) return false;
  return occurrenceAfter(parsed, zone(timeZone), toWallClock(anchor)) !== undefined;
}

/**
 * Whether the rule falls on a date after the anchor at all, its end (COUNT, UNTIL) left aside: a
 * series that ends at its first completion is no mistake, a rule that never recurs is.
 */
export function recursAfter(rule: string, timeZone: string, anchor: string): boolean {
  const parsed = ruleOrThrow(rule);
  return occurrenceAfter({ ...parsed, count: undefined, until: undefined }, zone(timeZone), toWallClock(anchor)) !== undefined;
}

function ruleOrThrow(text: string): Rule {
  const parsed = parseRule(text);
  if ('rule' in parsed) return parsed.rule;
  throw new RangeError(`Invalid recurrence rule: ${parsed.problems.map((p) => p.message).join('; ')}`);
}

// Every member of a series has its anchor's time of day (the subset has no BYHOUR), so "the first
// member after this start" is also the first whose date is after the completion's date.
function completionStart(completedAt: Temporal.Instant, tz: string, anchor: Temporal.PlainDateTime): Temporal.PlainDateTime {
  const completionDate = completedAt.toZonedDateTimeISO(tz).toPlainDate();
  return completionDate.toPlainDateTime(anchor.toPlainTime());
}

// The scans' results, by rule and start: a scan is pure, and the same one asked for again (a batch
// of tasks with one rule, a task toggled back and forth) costs a lookup, not up to 7 ms of CPU.
const SCANS_KEPT = 2000;
const scans = new Map<string, Temporal.PlainDateTime | null>();

function cachedWallClockAfter(rule: Rule, start: Temporal.PlainDateTime): Temporal.PlainDateTime | undefined {
  const key = `${canonical({ ...rule, count: undefined, until: undefined })}|${wallClockText(start)}`;
  const known = scans.get(key);
  if (known !== undefined) return known ?? undefined;
  const found = wallClockAfter(rule, start);
  if (scans.size >= SCANS_KEPT) scans.delete(scans.keys().next().value!);
  scans.set(key, found ?? null);
  return found;
}

function occurrenceAfter(rule: Rule, tz: string, start: Temporal.PlainDateTime): Occurrence | undefined {
  const wallClock = cachedWallClockAfter(rule, start);
  if (!wallClock) return undefined;
  const due = wallClock.toZonedDateTime(tz, { disambiguation: 'compatible' }).toInstant();
  if (rule.until && Temporal.Instant.compare(due, untilInstant(rule.until, tz)) > 0) return undefined;
  return { due: due.toString({ smallestUnit: 'second' }), anchor: wallClockText(wallClock) };
}

/** The last instant UNTIL allows: itself, or for a date the last moment of that local day. */
function untilInstant(until: Until, tz: string): Temporal.Instant {
  if (until.kind === 'instant') return until.instant;
  const nextDay = until.date.add({ days: 1 }).toZonedDateTime({ timeZone: tz });
  return nextDay.toInstant().subtract({ nanoseconds: 1 });
}

/** The first wall clock of the series anchored at `start` that is strictly after it. */
function wallClockAfter(rule: Rule, start: Temporal.PlainDateTime): Temporal.PlainDateTime | undefined {
  const dtstart = start.toZonedDateTime('UTC');
  const series = new RRuleTemporal({
    freq: rule.freq,
    interval: rule.interval,
    byMonth: rule.byMonth,
    byMonthDay: rule.byMonthDay,
    byDay: rule.byDay,
    bySetPos: rule.bySetPos,
    wkst: rule.wkst,
    dtstart,
    tzid: 'UTC',
    temporal: Temporal,
    maxIterations: { YEARLY: MAX_YEARS, DAILY: MAX_DAYS, WEEKLY: MAX_WEEKS, MONTHLY: MAX_MONTHS }[rule.freq],
    maxCandidateEvaluations: MAX_CANDIDATES,
    cache: false,
  });
  try {
    return series.next(dtstart, false)?.toPlainDateTime();
  } catch (error) {
    if (isSafetyCap(error)) return undefined;
    throw error;
  }
}

// The library reports a rule that found nothing within its caps by throwing, not by returning null.
function isSafetyCap(error: unknown): boolean {
  return error instanceof Error && /^Maximum (iterations|candidate evaluations) \(\d+\) exceeded/.test(error.message);
}
