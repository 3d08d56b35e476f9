import { Batcher } from './batcher.js';
import type { PreparedWrite } from './write-batch.js';

type Flush = (writes: PreparedWrite[]) => Promise<void>;

/**
 * Commits independent writes of concurrent requests together: while `maxInFlight` statements are
 * running, newly submitted writes wait and then go in one statement (up to `maxWrites`). Each request
 * still learns only its own outcome: when a combined statement fails, its parts are committed one by
 * one, so a bad write never fails its neighbours.
 */
export class GroupCommit {
  private readonly batcher: Batcher<PreparedWrite[], void>;

  constructor(flush: Flush, maxInFlight = 4, maxWrites = 500) {
    this.batcher = new Batcher<PreparedWrite[], void>(async (parts) => {
      await flush(parts.flat());
      return parts.map(() => undefined);
    }, { maxInFlight, maxSize: maxWrites, sizeOf: (writes) => writes.length });
  }

  submit(writes: PreparedWrite[]): Promise<void> {
    return this.batcher.submit(writes);
  }
}
