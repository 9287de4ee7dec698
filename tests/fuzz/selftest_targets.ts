/**
 * A target with planted faults, to show that the runner catches each kind of
 * failure with the seed that replays it: an input's first byte picks the
 * outcome (accept, a clean refusal, a leaked TypeError, a two-line message, a
 * message without the file name, accepted garbage, a gigabyte allocated, an
 * endless loop).
 *
 * @module
 */

import type { Rng } from "../reference/random.ts";
import { invariant } from "./oracle.ts";
import type { FuzzTarget } from "./targets.ts";

/** What the "hog" cases allocated, kept alive (and dropped by the next case). */
const hogged: Uint8Array[] = [];

/** The refusal the planted target may use. */
export class PlantedError extends Error {}

/** What each first byte does. */
export const PLANTED = ["ok", "refused", "leak", "two lines", "no file name", "invariant", "hog", "hang"] as const;

/** The planted target, under the name "planted". */
export const TARGETS: Readonly<Record<string, FuzzTarget>> = {
  planted: {
    name: "planted",
    errors: [PlantedError],
    paths: ["planted.bin"],
    seeds: () => Promise.resolve(null),
    sweep: () => [],
    // Hangs are rare: each costs the runner a time-out and a fresh worker.
    mutate: (rng: Rng) => new Uint8Array([rng.next() < 0.05 ? 7 : rng.int(0, 6)]),
    run: (input) => {
      hogged.length = 0;
      switch (PLANTED[input[0]]) {
        case "refused":
          throw new PlantedError("planted.bin: refused");
        case "leak":
          return Promise.resolve().then(() => (null as unknown as { x: number }).x).then(() => {});
        case "two lines":
          throw new PlantedError("planted.bin: first\nsecond");
        case "no file name":
          throw new PlantedError("refused");
        case "invariant":
          invariant(false, "garbage accepted");
          break;
        case "hog": // a "length field" believed: 1 GiB, kept while the case ends
          hogged.push(new Uint8Array(1 << 30));
          break;
        case "hang":
          for (;;) { /* a parser that never returns */ }
      }
      return Promise.resolve();
    },
  },
};
