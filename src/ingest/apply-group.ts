import client from 'prom-client';
import { registry } from '../metrics.js';
import type { Database } from '../store/db.js';
import { applyTogether, type Applied, type ApplyJob, type FinishGroup, type JobOutcome } from './apply.js';

interface Waiting {
  job: ApplyJob;
  resolve: (applied: Applied) => void;
  reject: (err: unknown) => void;
}

/** Groups running at once, and messages per group. */
const MAX_IN_FLIGHT = 2;
const MAX_MESSAGES = 32;

const groupSizes = new client.Histogram({
  name: 'renkei_ingest_group_messages',
  help: 'HL7 v2 messages applied in one transaction',
  buckets: [1, 2, 4, 8, 16, 32],
  registers: [registry],
});

/**
 * Applies the messages of concurrent senders together: while groups are committing, newly arrived
 * messages wait and then go in one transaction (shared look-ups, locks, reads and writes), so a busy
 * gateway pays one transaction per group, not per message. A lone message goes at once. Each message
 * still learns only its own outcome: one refused for its content is refused alone; one that writes what
 * an earlier message of its group writes goes in the next group; when a group's transaction fails (a
 * copy of a message committed meanwhile, a deadlock), its messages are applied again one by one.
 */
export class ApplyGroups {
  private readonly waiting: Waiting[] = [];
  private inFlight = 0;

  constructor(private readonly db: Database, private readonly finish: FinishGroup) {}

  apply(job: ApplyJob): Promise<Applied> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ job, resolve, reject });
      this.drain();
    });
  }

  private drain(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.waiting.length) {
      const group = this.waiting.splice(0, MAX_MESSAGES);
      this.inFlight++;
      void this.run(group).finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
  }

  private async run(group: Waiting[]): Promise<void> {
    let outcomes: JobOutcome[];
    try {
      outcomes = await this.together(group);
    } catch (err) {
      if (group.length === 1) return group[0].reject(err);
      await Promise.all(group.map((w) => this.together([w]).then(([outcome]) => this.settle(w, outcome), w.reject)));
      return;
    }
    const later = group.filter((w, i) => !this.settle(w, outcomes[i]));
    this.waiting.unshift(...later);
  }

  private together(group: Waiting[]): Promise<JobOutcome[]> {
    groupSizes.observe(group.length);
    return this.db.transaction((tx) => applyTogether(tx, group.map((w) => w.job), this.finish));
  }

  /** Answers the message; false when it goes in the next group instead. */
  private settle(w: Waiting, outcome: JobOutcome): boolean {
    if ('applied' in outcome) w.resolve(outcome.applied);
    else if ('refused' in outcome) w.reject(outcome.refused);
    return !('overlaps' in outcome);
  }
}
