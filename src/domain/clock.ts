/** Time comes in through the front door: TTL logic is time logic and tests must control it. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A day's length: reports, rollups and the dashboard count whole days of the tenant's time zone (time-zone.ts), numbered as UTC's. */
export const DAY_MS = 86_400_000;

/** Epoch milliseconds before 1973 are almost surely seconds (1764633600 is 2025 in seconds, January 1970 in ms). */
export const MIN_EPOCH_MS = 1e11;

/** The largest time a Date holds (±8.64e15 ms): a larger one could not be shown back. */
export const MAX_TIME = 8.64e15;
