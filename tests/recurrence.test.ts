import { Temporal } from 'temporal-polyfill';
import { describe, expect, it } from 'vitest';
import {
  checkRule,
  hasNext,
  isTimeZone,
  nextOccurrence,
  type Occurrence,
  type RuleProblem,
  recursAfter,
  wallClockOf,
} from '../src/tasks/recurrence.js';

/** The next `n` occurrences after `anchor` on basis 'due', each anchored at the one before. */
function series(rule: string, timeZone: string, anchor: string, n: number): Occurrence[] {
  const found: Occurrence[] = [];
  let current = anchor;
  for (let occurrence = 1; occurrence <= n; occurrence++) {
    const next = nextOccurrence({ rule, timeZone, basis: 'due', anchor: current, completedAt: '2000-01-01T00:00:00Z', occurrence });
    if (!next) break;
    found.push(next);
    current = next.anchor;
  }
  return found;
}

function afterCompletion(rule: string, timeZone: string, anchor: string, completedAt: string): Occurrence | undefined {
  return nextOccurrence({ rule, timeZone, basis: 'completion', anchor, completedAt, occurrence: 1 });
}

function problemsOf(rule: string): RuleProblem[] {
  const check = checkRule(rule);
  if (check.ok) throw new Error(`expected ${rule} to be refused, got ${check.rule}`);
  return check.problems;
}

function partsOf(rule: string): string[] {
  return problemsOf(rule).map((p) => p.part);
}

describe('nextOccurrence across time zones', () => {
  it('steps "every weekday at 09:30" in Europe/Berlin through the spring change', () => {
    const found = series('FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR', 'Europe/Berlin', '2027-03-01T09:30:00', 60);
    expect(found).toHaveLength(60);

    let previous = Temporal.PlainDate.from('2027-03-01');
    for (const { due, anchor } of found) {
      const wallClock = Temporal.PlainDateTime.from(anchor);
      const date = wallClock.toPlainDate();
      expect(wallClock.toPlainTime().toString()).toBe('09:30:00');
      expect(wallClockOf(due, 'Europe/Berlin')).toBe(anchor);
      expect(date.dayOfWeek).toBeLessThan(6);
      // Consecutive weekdays: the next day, or Monday after a Friday.
      expect(previous.until(date).days).toBe(previous.dayOfWeek === 5 ? 3 : 1);
      const summer = Temporal.PlainDate.compare(date, Temporal.PlainDate.from('2027-03-28')) > 0;
      expect(due).toBe(`${date}T${summer ? '07' : '08'}:30:00Z`);
      previous = date;
    }
    expect(found[0]).toEqual({ due: '2027-03-02T08:30:00Z', anchor: '2027-03-02T09:30:00' });
    expect(found.find((o) => o.anchor.startsWith('2027-03-26'))?.due).toBe('2027-03-26T08:30:00Z');
    expect(found.find((o) => o.anchor.startsWith('2027-03-29'))?.due).toBe('2027-03-29T07:30:00Z');
    expect(found[59]).toEqual({ due: '2027-05-24T07:30:00Z', anchor: '2027-05-24T09:30:00' });
  });

  it('keeps a daily 09:00 at 09:00 local across America/New_York spring and autumn changes', () => {
    expect(series('FREQ=DAILY', 'America/New_York', '2027-03-12T09:00:00', 3)).toEqual([
      { due: '2027-03-13T14:00:00Z', anchor: '2027-03-13T09:00:00' },
      { due: '2027-03-14T13:00:00Z', anchor: '2027-03-14T09:00:00' },
      { due: '2027-03-15T13:00:00Z', anchor: '2027-03-15T09:00:00' },
    ]);
    expect(series('FREQ=DAILY', 'America/New_York', '2027-11-05T09:00:00', 3)).toEqual([
      { due: '2027-11-06T13:00:00Z', anchor: '2027-11-06T09:00:00' },
      { due: '2027-11-07T14:00:00Z', anchor: '2027-11-07T09:00:00' },
      { due: '2027-11-08T14:00:00Z', anchor: '2027-11-08T09:00:00' },
    ]);
  });

  it('keeps a daily 09:00 at 09:00 local across the Europe/Berlin autumn change', () => {
    expect(series('FREQ=DAILY', 'Europe/Berlin', '2027-10-29T09:00:00', 3)).toEqual([
      { due: '2027-10-30T07:00:00Z', anchor: '2027-10-30T09:00:00' },
      { due: '2027-10-31T08:00:00Z', anchor: '2027-10-31T09:00:00' },
      { due: '2027-11-01T08:00:00Z', anchor: '2027-11-01T09:00:00' },
    ]);
  });

  it('shifts a time inside the spring gap forward by the gap instead of skipping the day (Europe/Berlin)', () => {
    const found = series('FREQ=DAILY', 'Europe/Berlin', '2027-03-26T02:30:00', 3);
    expect(found).toEqual([
      { due: '2027-03-27T01:30:00Z', anchor: '2027-03-27T02:30:00' },
      // 02:30 does not exist that night: 03:30+02:00, while the anchor keeps 02:30.
      { due: '2027-03-28T01:30:00Z', anchor: '2027-03-28T02:30:00' },
      { due: '2027-03-29T00:30:00Z', anchor: '2027-03-29T02:30:00' },
    ]);
    expect(wallClockOf('2027-03-28T01:30:00Z', 'Europe/Berlin')).toBe('2027-03-28T03:30:00');
  });

  it('steps on from a shifted occurrence at the rule time, not the shifted one', () => {
    const next = nextOccurrence({
      rule: 'FREQ=DAILY',
      timeZone: 'Europe/Berlin',
      basis: 'due',
      anchor: '2027-03-28T02:30:00',
      completedAt: '2027-03-28T05:00:00Z',
      occurrence: 1,
    });
    expect(next).toEqual({ due: '2027-03-29T00:30:00Z', anchor: '2027-03-29T02:30:00' });
  });

  it('shifts a time inside the spring gap forward in America/New_York', () => {
    expect(series('FREQ=DAILY', 'America/New_York', '2027-03-13T02:30:00', 2)).toEqual([
      { due: '2027-03-14T07:30:00Z', anchor: '2027-03-14T02:30:00' },
      { due: '2027-03-15T06:30:00Z', anchor: '2027-03-15T02:30:00' },
    ]);
  });

  it('takes the first of a repeated autumn time (Europe/Berlin)', () => {
    expect(series('FREQ=DAILY', 'Europe/Berlin', '2027-10-30T02:30:00', 2)).toEqual([
      { due: '2027-10-31T00:30:00Z', anchor: '2027-10-31T02:30:00' },
      { due: '2027-11-01T01:30:00Z', anchor: '2027-11-01T02:30:00' },
    ]);
  });

  it('counts a gap-day occurrence when BYSETPOS picks "the last Sunday"', () => {
    // The last Sunday of March 2027 is the night Berlin skips 02:00-03:00; it stays the last Sunday.
    expect(series('FREQ=MONTHLY;BYDAY=SU;BYSETPOS=-1', 'Europe/Berlin', '2027-02-28T02:30:00', 2)).toEqual([
      { due: '2027-03-28T01:30:00Z', anchor: '2027-03-28T02:30:00' },
      { due: '2027-04-25T00:30:00Z', anchor: '2027-04-25T02:30:00' },
    ]);
  });
});

describe('nextOccurrence monthly rules', () => {
  it('leaves out months without a 31st', () => {
    expect(series('FREQ=MONTHLY;BYMONTHDAY=31', 'UTC', '2027-01-31T09:00:00', 4).map((o) => o.anchor)).toEqual([
      '2027-03-31T09:00:00',
      '2027-05-31T09:00:00',
      '2027-07-31T09:00:00',
      '2027-08-31T09:00:00',
    ]);
  });

  it('finds the last Friday of each month', () => {
    expect(series('FREQ=MONTHLY;BYDAY=-1FR', 'Europe/Berlin', '2027-01-29T18:00:00', 4)).toEqual([
      { due: '2027-02-26T17:00:00Z', anchor: '2027-02-26T18:00:00' },
      { due: '2027-03-26T17:00:00Z', anchor: '2027-03-26T18:00:00' },
      { due: '2027-04-30T16:00:00Z', anchor: '2027-04-30T18:00:00' },
      { due: '2027-05-28T16:00:00Z', anchor: '2027-05-28T18:00:00' },
    ]);
  });

  it('finds the last weekday of each month with BYSETPOS', () => {
    expect(series('FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1', 'UTC', '2027-01-29T09:00:00', 3).map((o) => o.anchor)).toEqual([
      '2027-02-26T09:00:00',
      '2027-03-31T09:00:00',
      '2027-04-30T09:00:00',
    ]);
  });
});

describe('nextOccurrence COUNT and UNTIL', () => {
  const next = (rule: string, anchor: string, occurrence: number, timeZone = 'UTC') =>
    nextOccurrence({ rule, timeZone, basis: 'due', anchor, completedAt: '2000-01-01T00:00:00Z', occurrence });

  it('ends after COUNT occurrences', () => {
    expect(next('FREQ=DAILY;COUNT=3', '2027-01-01T09:00:00', 1)).toEqual({ due: '2027-01-02T09:00:00Z', anchor: '2027-01-02T09:00:00' });
    expect(next('FREQ=DAILY;COUNT=3', '2027-01-02T09:00:00', 2)).toEqual({ due: '2027-01-03T09:00:00Z', anchor: '2027-01-03T09:00:00' });
    expect(next('FREQ=DAILY;COUNT=3', '2027-01-03T09:00:00', 3)).toBeUndefined();
  });

  it('reads a date-only UNTIL as the end of that local day', () => {
    // 22:00 in New York on 3 January is already 4 January in UTC, and still within the rule.
    const rule = 'FREQ=DAILY;UNTIL=20270103';
    expect(next(rule, '2027-01-02T22:00:00', 1, 'America/New_York')).toEqual({
      due: '2027-01-04T03:00:00Z',
      anchor: '2027-01-03T22:00:00',
    });
    expect(next(rule, '2027-01-03T22:00:00', 2, 'America/New_York')).toBeUndefined();
  });

  it('reads a UTC UNTIL as an instant, inclusive', () => {
    expect(next('FREQ=DAILY;UNTIL=20270104T030000Z', '2027-01-02T22:00:00', 1, 'America/New_York')?.due).toBe('2027-01-04T03:00:00Z');
    expect(next('FREQ=DAILY;UNTIL=20270104T025959Z', '2027-01-02T22:00:00', 1, 'America/New_York')).toBeUndefined();
  });
});

describe('nextOccurrence on basis completion', () => {
  it('counts INTERVAL days from the local date of completion, at the anchor time', () => {
    // The anchor's own date (long overdue) plays no part.
    expect(afterCompletion('FREQ=DAILY;INTERVAL=3', 'Europe/Berlin', '2026-12-01T09:00:00', '2027-01-10T12:00:00Z')).toEqual({
      due: '2027-01-13T08:00:00Z',
      anchor: '2027-01-13T09:00:00',
    });
  });

  it('uses the local date when completion is late in the evening west of UTC', () => {
    // 2027-01-10T06:30Z is 22:30 on 9 January in Los Angeles.
    expect(afterCompletion('FREQ=DAILY;INTERVAL=3', 'America/Los_Angeles', '2027-01-01T09:00:00', '2027-01-10T06:30:00Z')).toEqual({
      due: '2027-01-12T17:00:00Z',
      anchor: '2027-01-12T09:00:00',
    });
  });

  it('uses the local date when completion is just after midnight east of UTC', () => {
    // 2027-01-10T23:30Z is 00:30 on 11 January in Berlin.
    expect(afterCompletion('FREQ=DAILY;INTERVAL=3', 'Europe/Berlin', '2027-01-01T09:00:00', '2027-01-10T23:30:00Z')).toEqual({
      due: '2027-01-14T08:00:00Z',
      anchor: '2027-01-14T09:00:00',
    });
  });

  it('finds the next Monday after the completion date', () => {
    // Completed on Wednesday 6 January.
    expect(afterCompletion('FREQ=WEEKLY;BYDAY=MO', 'Europe/Berlin', '2027-01-04T09:00:00', '2027-01-06T12:00:00Z')).toEqual({
      due: '2027-01-11T08:00:00Z',
      anchor: '2027-01-11T09:00:00',
    });
    // Completed on a Monday: the next one is a week on.
    expect(afterCompletion('FREQ=WEEKLY;BYDAY=MO', 'Europe/Berlin', '2027-01-04T09:00:00', '2027-01-11T10:00:00Z')?.anchor).toBe(
      '2027-01-18T09:00:00',
    );
    // Sunday evening in Los Angeles is Monday in UTC; the next Monday is the next day.
    expect(afterCompletion('FREQ=WEEKLY;BYDAY=MO', 'America/Los_Angeles', '2027-01-04T09:00:00', '2027-01-11T05:00:00Z')).toEqual({
      due: '2027-01-11T17:00:00Z',
      anchor: '2027-01-11T09:00:00',
    });
  });

  it('still ends after COUNT', () => {
    const input = { rule: 'FREQ=DAILY;COUNT=2', timeZone: 'UTC', basis: 'completion', anchor: '2027-01-01T09:00:00' } as const;
    expect(nextOccurrence({ ...input, completedAt: '2027-01-05T10:00:00Z', occurrence: 1 })?.anchor).toBe('2027-01-06T09:00:00');
    expect(nextOccurrence({ ...input, completedAt: '2027-01-06T10:00:00Z', occurrence: 2 })).toBeUndefined();
  });
});

describe('checkRule', () => {
  it('gives the canonical form', () => {
    expect(checkRule('rrule: freq=weekly ; byday=mo,fr ; interval=1')).toEqual({ ok: true, rule: 'FREQ=WEEKLY;BYDAY=MO,FR' });
    expect(
      checkRule('UNTIL=20271231T235959Z;WKST=su;BYSETPOS=1;BYDAY=+1MO,-1FR;BYMONTHDAY=1,2;BYMONTH=1,3,3;INTERVAL=2;FREQ=yearly'),
    ).toEqual({
      ok: true,
      rule: 'FREQ=YEARLY;INTERVAL=2;BYMONTH=1,3;BYMONTHDAY=1,2;BYDAY=1MO,-1FR;BYSETPOS=1;WKST=SU;UNTIL=20271231T235959Z',
    });
    expect(checkRule('FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=12')).toEqual({ ok: true, rule: 'FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=12' });
    expect(checkRule('FREQ=DAILY;UNTIL=20280229')).toEqual({ ok: true, rule: 'FREQ=DAILY;UNTIL=20280229' });
  });

  it('refuses an empty rule', () => {
    expect(partsOf('')).toEqual(['rule']);
    expect(partsOf('  RRULE:  ')).toEqual(['rule']);
  });

  it('refuses a missing, sub-daily or unknown FREQ', () => {
    expect(partsOf('BYDAY=MO')).toEqual(['FREQ']);
    expect(problemsOf('FREQ=HOURLY')).toEqual([
      { part: 'FREQ', message: expect.stringContaining('not supported: a task repeats at most daily') },
    ]);
    expect(partsOf('FREQ=MINUTELY')).toEqual(['FREQ']);
    expect(partsOf('FREQ=FORTNIGHTLY')).toEqual(['FREQ']);
  });

  it('names each refused value by its part', () => {
    expect(partsOf('FREQ=DAILY;INTERVAL=0')).toEqual(['INTERVAL']);
    expect(partsOf('FREQ=DAILY;INTERVAL=1001')).toEqual(['INTERVAL']);
    expect(problemsOf('FREQ=WEEKLY;BYDAY=XX')).toEqual([
      {
        part: 'BYDAY',
        message:
          'BYDAY: "XX" is not a weekday; use MO, TU, WE, TH, FR, SA or SU, with a number before it for "the last Friday" (-1FR) in a monthly rule',
      },
    ]);
    expect(partsOf('FREQ=MONTHLY;BYDAY=6MO')).toEqual(['BYDAY']);
    expect(partsOf('FREQ=MONTHLY;BYDAY=0MO')).toEqual(['BYDAY']);
    expect(partsOf('FREQ=WEEKLY;BYDAY=-1FR')).toEqual(['BYDAY']);
    expect(partsOf('FREQ=MONTHLY;BYMONTHDAY=32')).toEqual(['BYMONTHDAY']);
    expect(partsOf('FREQ=MONTHLY;BYMONTHDAY=0')).toEqual(['BYMONTHDAY']);
    expect(partsOf('FREQ=WEEKLY;BYMONTHDAY=1')).toEqual(['BYMONTHDAY']);
    expect(partsOf('FREQ=YEARLY;BYMONTH=13')).toEqual(['BYMONTH']);
    expect(partsOf('FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0')).toEqual(['BYSETPOS']);
    expect(partsOf('FREQ=MONTHLY;BYSETPOS=1')).toEqual(['BYSETPOS']);
    expect(partsOf('FREQ=WEEKLY;WKST=XX')).toEqual(['WKST']);
    expect(partsOf('FREQ=DAILY;COUNT=0')).toEqual(['COUNT']);
    expect(partsOf('FREQ=DAILY;COUNT=10001')).toEqual(['COUNT']);
    expect(partsOf('FREQ=DAILY;UNTIL=20270230')).toEqual(['UNTIL']);
    expect(partsOf('FREQ=DAILY;UNTIL=20270101T120000')).toEqual(['UNTIL']);
    expect(partsOf('FREQ=DAILY;UNTIL=2027-01-01')).toEqual(['UNTIL']);
  });

  it('refuses COUNT with UNTIL, a part given twice, and a part without a value', () => {
    expect(partsOf('FREQ=DAILY;COUNT=2;UNTIL=20270101')).toEqual(['COUNT']);
    expect(partsOf('FREQ=DAILY;FREQ=WEEKLY')).toEqual(['FREQ']);
    expect(partsOf('FREQ=DAILY;INTERVAL')).toEqual(['INTERVAL']);
    expect(partsOf('FREQ')).toEqual(['FREQ']);
  });

  it('refuses parts outside the subset, naming them', () => {
    for (const part of ['BYHOUR', 'BYMINUTE', 'BYSECOND', 'BYYEARDAY', 'BYWEEKNO', 'RDATE', 'X-NAME']) {
      const problems = problemsOf(`FREQ=DAILY;${part}=1`);
      expect(problems.map((p) => p.part)).toEqual([part]);
      expect(problems[0]?.message).toContain(part);
    }
  });

  it('collects every problem, not just the first', () => {
    expect(partsOf('FREQ=HOURLY;BYHOUR=9;FOO=1;BYDAY=XX,1MO;COUNT=0;UNTIL=20270230')).toEqual([
      'BYHOUR',
      'FOO',
      'FREQ',
      'BYDAY',
      'COUNT',
      'UNTIL',
      'COUNT',
    ]);
  });
});

describe('hasNext', () => {
  it('is false for a rule that can never match; February 30th and a BYSETPOS past the period are refused before any expansion', () => {
    expect(hasNext('FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=31', 'UTC', '2027-04-15T09:00:00')).toBe(false);
    expect(partsOf('FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYSETPOS=2')).toEqual(['BYSETPOS']);
    // Beyond the days the other parts select in a week, not only beyond seven.
    expect(problemsOf('FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA;BYSETPOS=7')).toEqual([
      { part: 'BYSETPOS', message: 'BYSETPOS 7 can never pick a day: the other parts select at most 6 in a week' },
    ]);
    expect(partsOf('FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2')).toEqual(['BYSETPOS']);
    expect(checkRule('FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1').ok).toBe(true);
    expect(checkRule('FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1').ok).toBe(true);
    expect(problemsOf('FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30')).toEqual([
      { part: 'BYMONTHDAY', message: 'no month in BYMONTH has day 30: the longest has 29 days' },
    ]);
    expect(partsOf('FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYSETPOS=8')).toEqual(['BYSETPOS']);
    expect(partsOf('FREQ=MONTHLY;BYDAY=MO;BYSETPOS=32')).toEqual(['BYSETPOS']);
    expect(partsOf('FREQ=DAILY;BYDAY=MO;BYSETPOS=2')).toEqual(['BYSETPOS']);
    expect(checkRule('FREQ=YEARLY;BYDAY=MO;BYSETPOS=-53').ok).toBe(true);
    expect(partsOf('FREQ=YEARLY;BYDAY=MO;BYSETPOS=-54')).toEqual(['BYSETPOS']);
  });

  it('is false when COUNT or UNTIL leaves nothing after the anchor', () => {
    expect(hasNext('FREQ=DAILY;COUNT=1', 'UTC', '2027-01-01T09:00:00')).toBe(false);
    expect(hasNext('FREQ=DAILY;UNTIL=20270101', 'UTC', '2027-01-01T09:00:00')).toBe(false);
    // Whether it recurs at all leaves the end aside: such a series is no mistake.
    expect(recursAfter('FREQ=DAILY;COUNT=1', 'UTC', '2027-01-01T09:00:00')).toBe(true);
    expect(recursAfter('FREQ=DAILY;UNTIL=20270101', 'UTC', '2027-01-01T09:00:00')).toBe(true);
    expect(recursAfter('FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=31;COUNT=5', 'UTC', '2027-04-15T09:00:00')).toBe(false);
  });

  it('is true for rare but real dates', () => {
    expect(hasNext('FREQ=DAILY', 'UTC', '2027-01-01T09:00:00')).toBe(true);
    // 2100 is no leap year: the next 29 February after 2096 is in 2104.
    expect(hasNext('FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29', 'UTC', '2097-03-01T09:00:00')).toBe(true);
    // The daily form names days of the month, which is refused: it would be searched day by day.
    expect(partsOf('FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29')).toEqual(['BYMONTHDAY']);
    // A monthly rule's rarest date: 29 February on a Monday (2044, then 2072).
    expect(hasNext('FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO', 'UTC', '2044-03-01T09:00:00')).toBe(true);
  });
});

describe('time zones and wall clocks', () => {
  it('accepts IANA names only', () => {
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('UTC')).toBe(true);
    expect(isTimeZone('+02:00')).toBe(false);
    expect(isTimeZone('2027-01-01T00:00Z')).toBe(false);
    expect(isTimeZone('Mars/Olympus_Mons')).toBe(false);
    expect(isTimeZone('')).toBe(false);
  });

  it('gives the local wall clock of an instant', () => {
    expect(wallClockOf('2027-03-28T01:30:00Z', 'Europe/Berlin')).toBe('2027-03-28T03:30:00');
    expect(wallClockOf('2027-03-28T03:30:00+02:00', 'America/New_York')).toBe('2027-03-27T21:30:00');
  });

  it('throws on an invalid rule, zone, anchor or instant', () => {
    const input = {
      rule: 'FREQ=DAILY',
      timeZone: 'UTC',
      basis: 'due',
      anchor: '2027-01-01T09:00:00',
      completedAt: '',
      occurrence: 1,
    } as const;
    expect(() => nextOccurrence({ ...input, rule: 'FREQ=HOURLY' })).toThrow(/FREQ=HOURLY/);
    expect(() => nextOccurrence({ ...input, timeZone: '+01:00' })).toThrow(RangeError);
    expect(() => nextOccurrence({ ...input, anchor: '2027-01-01T09:00:00Z' })).toThrow(RangeError);
    expect(() => nextOccurrence({ ...input, basis: 'completion', completedAt: '2027-01-01T09:00:00' })).toThrow(RangeError);
    expect(() => wallClockOf('2027-01-01T09:00:00', 'UTC')).toThrow(RangeError);
  });
});
