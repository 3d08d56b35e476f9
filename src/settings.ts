/** Readers of environment settings: a value that cannot be read stops the start with its name. */
type Env = NodeJS.ProcessEnv;

export function integerSetting(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer of at least ${min}, got "${raw}"`);
  return value;
}

/** A size such as `512kb`, `16mb` or a number of bytes. */
export function sizeSetting(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (!raw) return fallback;
  const match = /^(\d+)\s*(kb|mb|b)?$/i.exec(raw.trim());
  if (!match) throw new Error(`${name} must be a size such as 5mb, got "${raw}"`);
  const unit = (match[2] ?? 'b').toLowerCase();
  return Number(match[1]) * (unit === 'mb' ? 1024 * 1024 : unit === 'kb' ? 1024 : 1);
}

/** on, true, 1, yes → true; off, false, 0, no → false (any case, trimmed); anything else → undefined. */
export function onOffValue(raw: string): boolean | undefined {
  const value = raw.trim().toLowerCase();
  if (['on', 'true', '1', 'yes'].includes(value)) return true;
  if (['off', 'false', '0', 'no'].includes(value)) return false;
  return undefined;
}

/** An on/off setting: on, true, 1, yes or off, false, 0, no. */
export function onOffSetting(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (!raw?.trim()) return fallback;
  const value = onOffValue(raw);
  if (value === undefined) throw new Error(`${name} must be on or off, got "${raw}"`);
  return value;
}
