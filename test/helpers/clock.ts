import type { Clock } from '../../src/domain/clock';

/** A clock tests move by hand: TTL logic is time logic. */
export class FakeClock implements Clock {
  constructor(private t = Date.UTC(2026, 0, 1, 12, 0, 0)) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(ms: number): void {
    this.t = ms;
  }
}
