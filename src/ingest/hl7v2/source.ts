import type { Source, SourceValue } from '../../mapping/source.js';
import type { ForEach, SourceLocation } from '../../mapping/spec.js';
import type { Hl7Message, Hl7Segment } from './message.js';

/**
 * An HL7 message as a mapping source. Paths are `SEG-F`, `SEG-F.C`, `SEG-F.C.S`, with a repetition
 * `SEG-F(2)` or all of them `SEG-F(*)`; alternatives are separated by `|` (`OBX-14|EVN-2|MSH-7`).
 * A segment id is resolved from the context: the iterated segment itself, then the first one in the
 * iterated group, then the nearest one before it, then the first in the message.
 */

interface Hl7Path {
  segment: string;
  field: number;
  repetition: number | '*';
  component?: number;
  subcomponent?: number;
}

const PATH = /^([A-Z][A-Z0-9]{2})-(\d{1,3})(?:\((\*|\d{1,3})\))?(?:\.(\d{1,3}))?(?:\.(\d{1,3}))?$/;
const parsed = new Map<string, Hl7Path | undefined>();

function parsePath(path: string): Hl7Path | undefined {
  if (parsed.has(path)) return parsed.get(path);
  const m = PATH.exec(path.trim());
  const result = m
    ? {
        segment: m[1],
        field: Number(m[2]),
        repetition: m[3] === '*' ? ('*' as const) : Number(m[3] ?? 1),
        component: m[4] ? Number(m[4]) : undefined,
        subcomponent: m[5] ? Number(m[5]) : undefined,
      }
    : undefined;
  parsed.set(path, result);
  return result;
}

const alternativesOf = new Map<string, string[]>();
const alternatives = (path: string): string[] => {
  let list = alternativesOf.get(path);
  if (!list) alternativesOf.set(path, (list = path.split('|')));
  return list;
};

export class Hl7Source implements Source {
  /** Values read so far, by single path: the message does not change while it is mapped. */
  private readonly read = new Map<string, SourceValue[]>();

  constructor(
    readonly message: Hl7Message,
    private readonly item?: Hl7Segment,
    private readonly group?: Hl7Segment[],
  ) {}

  private segmentFor(name: string): Hl7Segment | undefined {
    if (this.item?.name === name) return this.item;
    const inGroup = this.group?.find((s) => s.name === name);
    if (inGroup) return inGroup;
    const anchor = this.group?.[0] ?? this.item;
    if (anchor) {
      for (let i = anchor.sequence - 2; i >= 0; i--) {
        if (this.message.segments[i].name === name) return this.message.segments[i];
      }
    }
    return this.message.segment(name);
  }

  values(path: string): SourceValue[] {
    for (const alternative of alternatives(path)) {
      const found = this.valuesAt(alternative);
      if (found.length) return found;
    }
    return [];
  }

  private valuesAt(path: string): SourceValue[] {
    let found = this.read.get(path);
    if (!found) this.read.set(path, (found = this.readValues(path)));
    return found;
  }

  private readValues(path: string): SourceValue[] {
    const p = parsePath(path);
    const segment = p && this.segmentFor(p.segment);
    if (!p || !segment) return [];
    const field = segment.field(p.field);
    const repetitions = p.repetition === '*' ? field.parts() : [field.part(p.repetition)];
    return repetitions
      .map((rep) => {
        let value = rep;
        if (p.component) value = value.part(p.component);
        if (p.subcomponent) value = value.part(p.subcomponent);
        return value;
      })
      .filter((v) => !v.isEmpty);
  }

  locate(path: string): SourceLocation {
    const options = alternatives(path);
    const chosen = options.find((a) => this.valuesAt(a).length) ?? options[0];
    const p = parsePath(chosen);
    if (!p) return {};
    const segment = this.segmentFor(p.segment);
    return {
      segment: p.segment,
      sequence: segment?.sequence,
      field: p.field,
      ...(typeof p.repetition === 'number' && p.repetition > 1 ? { repetition: p.repetition } : {}),
      ...(p.component ? { component: p.component } : {}),
      ...(p.subcomponent ? { subcomponent: p.subcomponent } : {}),
    };
  }

  origin(): SourceLocation {
    return this.item ? { segment: this.item.name, sequence: this.item.sequence } : {};
  }

  items(forEach: ForEach): Source[] {
    const segments = this.message.segments;
    if (forEach.segment) return segments.filter((s) => s.name === forEach.segment).map((s) => new Hl7Source(this.message, s));
    if (forEach.group) {
      const groups: Hl7Segment[][] = [];
      for (const s of segments) {
        if (s.name === forEach.group) groups.push([s]);
        else if (groups.length && s.name !== 'MSH') groups[groups.length - 1].push(s);
      }
      return groups.map((g) => new Hl7Source(this.message, g[0], g));
    }
    return [this];
  }

  checkPath(path: string): string | undefined {
    return checkHl7Path(path);
  }
}

/** Undefined when `path` is an HL7 path (alternatives with `|`), else what is wrong with it. */
export function checkHl7Path(path: string): string | undefined {
  const bad = path.split('|').find((p) => !parsePath(p));
  return bad === undefined ? undefined : `"${bad}" is not an HL7 path such as PID-5, RXE-2.1 or PID-5(*)`;
}
