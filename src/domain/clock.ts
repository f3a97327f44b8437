/** Time comes in through the front door: TTL logic is time logic and tests must control it. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
