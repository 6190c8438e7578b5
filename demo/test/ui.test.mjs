// /api/server answers: the page never takes a WebSocket host from the server unless the server
// vouched for it; otherwise it uses its own address bar's host.
import { test } from "node:test";
import assert from "node:assert/strict";
import { serverUrls } from "../js/ui.js";

const here = { hostname: "game.example" };

test("a vouched url comes first, the cluster's other nodes after it, without repeats", () => {
  const answer = { url: "ws://a:1/", urls: ["ws://a:1/", "ws://b:2/"], scheme: "ws", port: 1 };
  assert.deepEqual(serverUrls(answer, here), ["ws://a:1/", "ws://b:2/"]);
});

test("a null url means the page's own host with the server's scheme and port", () => {
  const answer = { url: null, urls: ["ws://b:2/"], scheme: "wss", port: 8765 };
  assert.deepEqual(serverUrls(answer, here), ["wss://game.example:8765/", "ws://b:2/"]);
});

test("an IPv6 page host keeps its brackets", () => {
  const answer = { url: null, urls: [], scheme: "ws", port: 9 };
  assert.deepEqual(serverUrls(answer, { hostname: "[::1]" }), ["ws://[::1]:9/"]);
});
