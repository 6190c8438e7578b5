// A state's live entities as game values, one column per field a page draws: what the
// interpolator blends and the renderer draws (the arena's and the big world's pages).

import { dequantise } from "./codec.js";

export const KIND_PLAYER = 1;
const DRAWN = ["x", "y", "heading", "kind", "owner"];

/** Live entities of a state (slot order) as game values: {ids, x, y, heading, kind, owner}. */
export function liveColumns(schema, st) {
  const at = Object.fromEntries(DRAWN.map((n) => [n, schema.findIndex((f) => f.name === n)]));
  if (st.live) { // a view room's state: only the entities held, without its dense form
    const out = { ids: [...st.liveIds] };
    for (const n of DRAWN) out[n] = at[n] >= 0 ? st.liveCols[at[n]].map((q) => dequantise(schema[at[n]], q)) : new Float64Array(st.live.length);
    return out;
  }
  let live = 0;
  for (let s = 0; s < st.n; s++) live += st.alive[s];
  const out = { ids: new Array(live) };
  for (const n of DRAWN) out[n] = new Float64Array(live);
  let i = 0;
  for (let s = 0; s < st.n; s++) {
    if (!st.alive[s]) continue;
    out.ids[i] = st.ids[s];
    for (const n of DRAWN) if (at[n] >= 0) out[n][i] = dequantise(schema[at[n]], st.cols[at[n]][s]);
    i++;
  }
  return out;
}

/** The player entity of client `clientId` in `world` (liveColumns' result): {id, x, y}, or null. */
export function playerIn(world, clientId) {
  if (!world) return null;
  for (let i = 0; i < world.ids.length; i++) {
    if (world.kind[i] === KIND_PLAYER && world.owner[i] === clientId) return { id: world.ids[i], x: world.x[i], y: world.y[i] };
  }
  return null;
}
