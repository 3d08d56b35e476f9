const PARSE = 0x50; // 'P'
const CLOSE = 0x43; // 'C'
const PARSE_COMPLETE = 0x31; // '1'
const ERROR_RESPONSE = 0x45; // 'E'
const READY_FOR_QUERY = 0x5a; // 'Z'
const STATEMENT = 0x53; // 'S' (Close of a statement, not a portal)

/** ParseComplete, as the backend answers a Parse that succeeded. */
export const PARSE_COMPLETE_MESSAGE = Uint8Array.of(PARSE_COMPLETE, 0, 0, 0, 4);

const cString = (message: Uint8Array, start: number) => {
  const end = message.indexOf(0, start);
  return { value: Buffer.from(message.buffer, message.byteOffset + start, end - start).toString('utf8'), next: end + 1 };
};

/** The statement name and text of a Parse message. */
function parseOf(message: Uint8Array): { name: string; text: string } {
  const name = cString(message, 5);
  return { name: name.value, text: cString(message, name.next).value };
}

/**
 * The named statements prepared in the one PGlite session that every embedded connection shares. The
 * store names a statement by the digest of its text (see prepared.ts), so a name means one text: when a
 * connection asks to prepare a statement the session already holds, the answer is given here
 * (ParseComplete) instead of a second Parse, which the backend would refuse as a duplicate. Each
 * connection then prepares a statement as if it had a session of its own, and the session plans it once.
 * A statement dropped by SQL (DEALLOCATE, DISCARD) would go unseen: the store sends neither.
 */
export class SessionStatements {
  private readonly prepared = new Map<string, string>();

  /** Whether this Parse is for a statement the session already holds with the same text. */
  holds(message: Uint8Array): boolean {
    if (message[0] !== PARSE) return false;
    const { name, text } = parseOf(message);
    return name !== '' && this.prepared.get(name) === text;
  }

  /** Notes what a message the backend ran did to the session's statements, given its answer. */
  ran(message: Uint8Array, answer: Uint8Array): void {
    if (message[0] === PARSE && answer[0] === PARSE_COMPLETE) {
      const { name, text } = parseOf(message);
      if (name) this.prepared.set(name, text);
    } else if (message[0] === CLOSE && message[5] === STATEMENT) {
      this.prepared.delete(cString(message, 6).value);
    }
  }
}

/**
 * Whether a connection's extended-protocol exchange has failed, read off the backend's answers: after an
 * ErrorResponse the backend ignores every message up to Sync (answering none), so a Parse must not be
 * answered here either until the ReadyForQuery that Sync brings.
 */
export function failedAfter(failed: boolean, answer: Uint8Array): boolean {
  const view = Buffer.from(answer.buffer, answer.byteOffset, answer.byteLength);
  for (let at = 0; at + 5 <= view.length; at += 1 + view.readInt32BE(at + 1)) {
    if (view[at] === ERROR_RESPONSE) failed = true;
    else if (view[at] === READY_FOR_QUERY) failed = false;
  }
  return failed;
}
