// zod's ISO date and time checks (the API's own, so a time it would refuse is refused here first), imported when a
// command first checks a time: zod is about 0.15 s of a start-up that `--help` and most commands never need.

export interface IsoChecks {
  /** YYYY-MM-DD, a day that exists. */
  day(v: string): boolean;
  /** RFC 3339 with a zone. */
  instant(v: string): boolean;
  /** RFC 3339 without a zone (Python's naive isoformat()). */
  zoneless(v: string): boolean;
}

let checks: Promise<IsoChecks> | undefined;

export function isoChecks(): Promise<IsoChecks> {
  checks ??= import('zod').then(({ z }) => {
    const day = z.iso.date();
    const instant = z.iso.datetime({ offset: true });
    const zoneless = z.iso.datetime({ local: true });
    return { day: (v) => day.safeParse(v).success, instant: (v) => instant.safeParse(v).success, zoneless: (v) => zoneless.safeParse(v).success };
  });
  return checks;
}
