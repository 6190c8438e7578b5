// Seeded PRNG (mulberry32), shared by the arena room and the bots. gamesync uses numpy's
// PCG64 with the same seed, so NPC positions are identically distributed, not the same numbers.
export function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6D2B79F5) >>> 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}
