/** Date handling for search: every FHIR date, dateTime or instant is a range [lo, hi) at its precision. */

export interface DateRange {
  lo: Date;
  hi: Date;
}

// Dates and partial dateTimes without an offset are read in Japan Standard Time.
const DEFAULT_OFFSET = '+09:00';
const DATE_PATTERN =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

export function parseDateRange(value: string): DateRange | undefined {
  const m = DATE_PATTERN.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const offset = tz ?? DEFAULT_OFFSET;
  const iso = (yy: string, mm = '01', dd = '01', hh = '00', mn = '00', ss = '00', ms = '000') =>
    new Date(`${yy}-${mm}-${dd}T${hh}:${mn}:${ss}.${ms}${offset}`);
  const lo = iso(y, mo, d, h, mi, s, (frac ?? '').padEnd(3, '0').slice(0, 3));
  if (Number.isNaN(lo.getTime())) return undefined;
  const hi = new Date(lo);
  if (!mo) hi.setUTCFullYear(hi.getUTCFullYear() + 1);
  else if (!d) addMonth(hi, lo, offset);
  else if (!h) hi.setTime(lo.getTime() + 86_400_000);
  else if (!s) hi.setTime(lo.getTime() + 60_000);
  else if (!frac) hi.setTime(lo.getTime() + 1000);
  else hi.setTime(lo.getTime() + 1);
  return { lo, hi };
}

function addMonth(hi: Date, lo: Date, offset: string): void {
  const local = new Date(lo.getTime() + offsetMinutes(offset) * 60_000);
  const next = new Date(Date.UTC(local.getUTCFullYear(), local.getUTCMonth() + 1, 1));
  hi.setTime(next.getTime() - offsetMinutes(offset) * 60_000);
}

function offsetMinutes(offset: string): number {
  if (offset === 'Z') return 0;
  const sign = offset.startsWith('-') ? -1 : 1;
  const [hh, mm] = offset.slice(1).split(':').map(Number);
  return sign * (hh * 60 + mm);
}

const FAR_PAST = new Date('0001-01-01T00:00:00Z');
const FAR_FUTURE = new Date('9999-12-31T00:00:00Z');

/** A Period: open ends reach to the far past or future. */
export function periodRange(start?: string, end?: string): DateRange | undefined {
  const s = start ? parseDateRange(start) : undefined;
  const e = end ? parseDateRange(end) : undefined;
  if (!s && !e) return undefined;
  return { lo: s?.lo ?? FAR_PAST, hi: e?.hi ?? FAR_FUTURE };
}
