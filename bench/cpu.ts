import { readdirSync, readFileSync } from 'node:fs';

/** utime + stime of a process, in ms (Linux clock ticks of 10 ms). */
export function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** utime + stime of every process on this machine with this command name (e.g. `postgres`, `redis-server`), in ms. */
export function cpuMsOfCommand(command: string): number {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) === command) total += cpuMsOf(Number(pid));
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}

/** CPU ms spent by each named process (or group of processes) between `start` and `read`. */
export class CpuMeter {
  private before: Record<string, number> = {};
  constructor(private readonly sources: Record<string, () => number>) {}

  start(): void {
    this.before = Object.fromEntries(Object.entries(this.sources).map(([name, read]) => [name, read()]));
  }

  read(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.sources).map(([name, read]) => [name, read() - this.before[name]]));
  }
}

/** This process's own CPU time in ms. */
export const ownCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
