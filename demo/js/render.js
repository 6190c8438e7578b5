// Drawing the arena on a canvas: the world border, NPCs, players with their names, and the
// player's own dot (at its predicted position) highlighted; for a world too big for one
// screen, a camera that follows the player and a minimap of the whole world with the cells
// the client receives. Pure drawing: no state of its own.

export const KIND_NPC = 0;

/** A stable colour per client id. */
export function colourFor(id) {
  return `hsl(${(id * 137.508) % 360}deg 70% 55%)`;
}

/** Fit the canvas's backing store to its CSS size (crisp on high-DPI screens). */
export function fitCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.round(canvas.clientWidth * dpr), h = Math.round(canvas.clientHeight * dpr);
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  return dpr;
}

/** CSS pixels kept clear around the world, so that its border and a player at a wall show whole. */
export const MARGIN_PX = 12;

/**
 * Draw one frame: without a camera, the world as large as fits the canvas (centred, MARGIN_PX
 * clear around it).
 * @param world  the interpolated world ({ids, x, y, heading, kind, owner}), or null
 * @param me     {entity, x, y, name} the own player at its predicted position, or null
 * @param names  Map client id -> name
 * @param size   world size in units
 * @param camera null: the whole world fits the canvas; else {x, y, span, grid, radius}: centred
 *               on (x, y), `span` units across the canvas's shorter side, grid lines every
 *               `grid` units (default 100), and a ring of `radius` units around `me` (the view)
 * @returns      where the world went: {left, top, side} in CSS pixels of the canvas
 */
export function draw(canvas, world, me, names, size, camera = null) {
  const dpr = fitCanvas(canvas);
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height;
  const scale = camera ? Math.min(W, H) / camera.span : Math.max(1, Math.min(W, H) - 2 * MARGIN_PX * dpr) / size;
  const ox = camera ? W / 2 - camera.x * scale : (W - size * scale) / 2;
  const oy = camera ? H / 2 - camera.y * scale : (H - size * scale) / 2;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#0d1117";
  ctx.fillRect(0, 0, W, H);
  ctx.setTransform(scale, 0, 0, scale, ox, oy);

  // the world: floor, grid lines (only those on screen), border
  ctx.fillStyle = "#161b22";
  ctx.fillRect(0, 0, size, size);
  ctx.strokeStyle = "#21262d";
  ctx.lineWidth = 1 / scale;
  ctx.beginPath();
  const step = camera?.grid ?? 100;
  const [x0, x1] = [Math.max(0, -ox / scale), Math.min(size, (W - ox) / scale)];
  const [y0, y1] = [Math.max(0, -oy / scale), Math.min(size, (H - oy) / scale)];
  for (let g = Math.ceil(x0 / step) * step || step; g < x1; g += step) { ctx.moveTo(g, y0); ctx.lineTo(g, y1); }
  for (let g = Math.ceil(y0 / step) * step || step; g < y1; g += step) { ctx.moveTo(x0, g); ctx.lineTo(x1, g); }
  ctx.stroke();
  ctx.strokeStyle = "#f0883e";
  ctx.lineWidth = 3 / scale;
  ctx.strokeRect(0, 0, size, size);

  const px = 1 / scale; // one screen pixel in world units
  const labels = [];
  if (world) {
    // NPCs: small grey wedges pointing where they face
    ctx.fillStyle = "#6e7681";
    ctx.beginPath();
    for (let i = 0; i < world.ids.length; i++) {
      if (world.kind[i] !== KIND_NPC) continue;
      const x = world.x[i], y = world.y[i], h = world.heading[i], r = 4 * px * dpr;
      ctx.moveTo(x + Math.cos(h) * r * 1.6, y + Math.sin(h) * r * 1.6);
      ctx.lineTo(x + Math.cos(h + 2.4) * r, y + Math.sin(h + 2.4) * r);
      ctx.lineTo(x + Math.cos(h - 2.4) * r, y + Math.sin(h - 2.4) * r);
      ctx.closePath();
    }
    ctx.fill();
    // other players: coloured dots with names
    for (let i = 0; i < world.ids.length; i++) {
      if (world.kind[i] === KIND_NPC || (me && world.ids[i] === me.entity)) continue;
      const owner = world.owner[i];
      dot(ctx, world.x[i], world.y[i], world.heading[i], 7 * px * dpr, colourFor(owner), false);
      labels.push([world.x[i], world.y[i], names.get(owner) ?? `player ${owner}`, "#c9d1d9"]);
    }
  }
  if (me && me.x !== null && camera?.radius) { // what the server sends for sure: everything within the radius
    ctx.strokeStyle = "rgba(88,166,255,0.35)";
    ctx.lineWidth = 1.5 * px * dpr;
    ctx.setLineDash([6 * px * dpr, 6 * px * dpr]);
    ctx.beginPath();
    ctx.arc(me.x, me.y, camera.radius, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  if (me && me.x !== null) {
    dot(ctx, me.x, me.y, me.heading ?? 0, 9 * px * dpr, colourFor(me.clientId), true);
    labels.push([me.x, me.y, `${me.name} (you)`, "#ffffff"]);
  }
  // names in screen space, so text stays sharp and the same size at any zoom
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.font = `${12 * dpr}px system-ui, sans-serif`;
  ctx.textAlign = "center";
  for (const [x, y, text, colour] of labels) {
    const sx = ox + x * scale, sy = oy + y * scale - 14 * dpr;
    ctx.fillStyle = "rgba(13,17,23,0.7)";
    const w = ctx.measureText(text).width;
    ctx.fillRect(sx - w / 2 - 3 * dpr, sy - 11 * dpr, w + 6 * dpr, 15 * dpr);
    ctx.fillStyle = colour;
    ctx.fillText(text, sx, sy); // canvas text is never parsed as HTML
  }
  return { left: ox / dpr, top: oy / dpr, side: (size * scale) / dpr };
}

function dot(ctx, x, y, heading, r, colour, mine) {
  ctx.fillStyle = colour;
  ctx.beginPath();
  ctx.arc(x, y, r, 0, 2 * Math.PI);
  ctx.fill();
  ctx.strokeStyle = mine ? "#ffffff" : "rgba(0,0,0,0.6)";
  ctx.lineWidth = mine ? r * 0.35 : r * 0.2;
  ctx.stroke();
  ctx.beginPath(); // facing
  ctx.moveTo(x, y);
  ctx.lineTo(x + Math.cos(heading) * r * 1.5, y + Math.sin(heading) * r * 1.5);
  ctx.stroke();
}

/**
 * The minimap: the whole world, the grid cells this client receives (`cells`, ids below
 * grid.count), the own player (`me` {x, y}) with its view radius, and the other players in
 * view (`others` [{x, y, owner}]).
 * @param grid  the welcome's grid ({cell, cols, rows, x0, y0, count}, view.js parseGrid)
 */
export function drawMinimap(canvas, { size, grid, cells, me, radius, others = [] }) {
  const dpr = fitCanvas(canvas);
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height;
  const scale = Math.min(W, H) / size;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, W, H);
  ctx.setTransform(scale, 0, 0, scale, 0, 0);
  ctx.fillStyle = "#161b22";
  ctx.fillRect(0, 0, size, size);
  if (grid) {
    ctx.fillStyle = "rgba(88,166,255,0.45)";
    for (const c of cells) {
      if (c >= grid.count) continue; // a scope cell: no place on the map
      const col = c % grid.cols, row = Math.floor(c / grid.cols);
      ctx.fillRect(grid.x0 + col * grid.cell, grid.y0 + row * grid.cell, grid.cell, grid.cell);
    }
  }
  const px = 1 / scale;
  for (const o of others) {
    ctx.fillStyle = colourFor(o.owner);
    ctx.fillRect(o.x - 2 * px * dpr, o.y - 2 * px * dpr, 4 * px * dpr, 4 * px * dpr);
  }
  if (me) {
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = px * dpr;
    ctx.beginPath();
    ctx.arc(me.x, me.y, radius, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.fillStyle = "#ffffff";
    ctx.beginPath();
    ctx.arc(me.x, me.y, 3 * px * dpr, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.strokeStyle = "#f0883e";
  ctx.lineWidth = 2 * px * dpr;
  ctx.strokeRect(0, 0, size, size);
}
