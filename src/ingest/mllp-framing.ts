/**
 * MLLP framing (HL7 v2 Minimal Lower Layer Protocol): each message is `0x0B` + bytes + `0x1C 0x0D`.
 * Frames may arrive split across TCP packets or several in one; bytes between frames are ignored; a frame
 * larger than the limit is reported once and its bytes discarded up to its end.
 */

export const START_BLOCK = 0x0b;
export const END_BLOCK = 0x1c;
export const CARRIAGE_RETURN = 0x0d;

export type FrameEvent =
  | { type: 'frame'; bytes: Buffer }
  /** A frame went over the limit: `head` is its first bytes (for the record), the rest was dropped. */
  | { type: 'oversize'; head: Buffer };

export function frame(bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([START_BLOCK]), bytes, Buffer.from([END_BLOCK, CARRIAGE_RETURN])]);
}

export class MllpDecoder {
  private parts: Buffer[] = [];
  private size = 0;
  private state: 'outside' | 'inside' | 'discarding' = 'outside';
  /** The previous chunk ended on 0x1C: a leading 0x0D of the next one belongs to that frame's end. */
  private afterEnd = false;
  private oversizeHead?: Buffer;

  constructor(private readonly maxFrameBytes: number) {}

  push(chunk: Buffer): FrameEvent[] {
    const events: FrameEvent[] = [];
    let i = 0;
    if (this.afterEnd && chunk[0] === CARRIAGE_RETURN) i = 1;
    this.afterEnd = false;
    while (i < chunk.length) {
      if (this.state === 'outside') {
        const start = chunk.indexOf(START_BLOCK, i);
        if (start < 0) return events;
        this.state = 'inside';
        this.parts = [];
        this.size = 0;
        i = start + 1;
        continue;
      }
      const end = chunk.indexOf(END_BLOCK, i);
      const restart = chunk.indexOf(START_BLOCK, i);
      if (restart >= 0 && (end < 0 || restart < end)) {
        // A new frame began before this one ended: the unfinished one is abandoned.
        this.state = 'outside';
        i = restart;
        continue;
      }
      const stop = end < 0 ? chunk.length : end;
      this.take(chunk.subarray(i, stop));
      if (end < 0) return events;
      if (this.state === 'inside') events.push({ type: 'frame', bytes: Buffer.concat(this.parts, this.size) });
      else events.push({ type: 'oversize', head: this.oversizeHead ?? Buffer.alloc(0) });
      this.state = 'outside';
      this.parts = [];
      this.size = 0;
      this.oversizeHead = undefined;
      i = end + 1;
      if (i === chunk.length) this.afterEnd = true;
      else if (chunk[i] === CARRIAGE_RETURN) i++;
    }
    return events;
  }

  private take(bytes: Buffer): void {
    if (!bytes.length) return;
    if (this.state === 'discarding') return;
    if (this.size + bytes.length > this.maxFrameBytes) {
      this.oversizeHead = Buffer.concat([...this.parts, bytes]).subarray(0, Math.min(this.maxFrameBytes, 64 * 1024));
      this.parts = [];
      this.state = 'discarding';
      return;
    }
    this.parts.push(Buffer.from(bytes));
    this.size += bytes.length;
  }
}
