"""Every mistake a user can make on the command line ends with one line on stderr that says
what to change, and exit status 2 (a usage error: an option's value, a file it names) or 1 (a
failure at run time: a port in use, a server or Redis that does not answer, a second Ctrl-C);
never a traceback. Each case runs the real CLI (``python -m gamesync``) as a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import trustme

from gamesync.cluster.local import free_port

TIMEOUT_S = 60  # a cold interpreter on a busy 2-core machine; the Redis case waits 5 s of it
SECRET = "s" * 40


def gamesync(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "GAMESYNC_SECRET"}
    return subprocess.run([sys.executable, "-m", "gamesync", *args], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env={**base, **(env or {})}, cwd=cwd, check=False)


def one_line(done: subprocess.CompletedProcess[str], status: int, *says: str) -> str:
    """The run ended with ``status`` and, last on stderr, one line from gamesync that says
    ``says``; no traceback. Usage errors (2) print that line alone."""
    err = done.stderr
    assert done.returncode == status, f"exit status {done.returncode}, not {status}:\n{err}"
    assert "Traceback" not in err, err
    lines = err.rstrip("\n").split("\n")
    line = lines[-1]
    assert line.startswith("gamesync"), err
    for text in says:
        assert text in line, f"{text!r} not in {line!r}"
    if status == 2:
        assert len(lines) == 1 and not done.stdout, err
    return line


def serve(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    """``gamesync serve`` on free ports (unless ``args`` name them), few NPCs."""
    ports = [] if "--port" in args else ["--port", str(free_port())]
    http = [] if "--http-port" in args else ["--http-port", "-1"]
    return gamesync("serve", *ports, *http, "--npcs", "5", *args, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("pems")
    cert = trustme.CA().issue_cert("localhost")
    paths = {"cert": d / "cert.pem", "key": d / "key.pem", "other_key": d / "other.pem"}
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    trustme.CA().issue_cert("elsewhere").private_key_pem.write_to_path(str(paths["other_key"]))
    return {k: str(v) for k, v in paths.items()}


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something else listens on, the port before it free."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            try:
                with socket.socket() as before:
                    before.bind(("127.0.0.1", port - 1))
            except OSError:
                continue
            yield port
            return


# -- gamesync serve: usage errors (2) ----------------------------------------------------------------


SERVE_USAGE_ERRORS = [
    (["--tick-rate", "0"], ["--tick-rate 0", "above 0"]),
    (["--tick-rate", "-30"], ["--tick-rate -30", "above 0"]),
    (["--tick-rate", "fast"], ["--tick-rate", "invalid float value", "--help"]),
    (["--port", "70000"], ["--port 70000", "0..65535"]),
    (["--http-port", "-5"], ["--http-port -5", "-1: no HTTP side"]),
    (["--redis", "localhost:6379"], ["--redis localhost:6379", "redis://"]),
    (["--allow-origin", "https://Game.example/"], ["--allow-origin https://Game.example/", "https://game.example"]),
    (["--allow-origin", "https://*.game.example"], ["no wildcard"]),
    (["--public-url", "http://game.example"], ["--public-url", "ws://"]),
    (["--game", "chess"], ["--game chess: no such game; the built-in ones are arena"]),
    (["--npcs", "-1"], ["--npcs -1"]),
    (["--input-backlog", "-1"], ["--input-backlog -1", "at least 0"]),
    (["--stats-interval", "0"], ["--stats-interval 0", "above 0"]),
    (["--drain-timeout", "-1"], ["--drain-timeout -1", "0 or more"]),
    (["--port-file", "/nonexistent/dir/port"], ["--port-file /nonexistent/dir/port"]),
    (["--host", "0.0.0.0"], ["refusing to serve 0.0.0.0 without join tokens", "--insecure-dev"]),
    (["--keyfile", "key.pem"], ["--keyfile needs --certfile"]),
    (["--certfile", "/nonexistent.pem"], ["--certfile /nonexistent.pem", "No such file"]),
    (["--secret-file", "/"], ["cannot read the secret file /"]),
    (["--tickrate", "30"], ["unrecognized arguments: --tickrate", "--help"]),
]
PARALLEL = 4  # CLI runs at once: each is mostly a cold interpreter's imports


@pytest.fixture(scope="module")
def serve_usage_runs() -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case of SERVE_USAGE_ERRORS run once, PARALLEL at a time, by its id."""
    with ThreadPoolExecutor(PARALLEL) as pool:
        runs = pool.map(lambda args: serve(*args), [a for a, _ in SERVE_USAGE_ERRORS])
        return {" ".join(a): r for (a, _), r in zip(SERVE_USAGE_ERRORS, runs, strict=True)}


@pytest.mark.parametrize(("args", "says"), SERVE_USAGE_ERRORS, ids=[" ".join(a) for a, _ in SERVE_USAGE_ERRORS])
def test_serve_usage_errors_end_with_one_line_and_status_2(args: list[str], says: list[str],
                                                           serve_usage_runs: dict[str, subprocess.CompletedProcess[str]]
                                                           ) -> None:
    one_line(serve_usage_runs[" ".join(args)], 2, *says)


def test_a_secret_set_but_too_short_is_a_usage_error() -> None:
    one_line(serve(env={"GAMESYNC_SECRET": "short"}), 2, "GAMESYNC_SECRET is 5 bytes", "at least 32")


def test_certificate_mistakes_name_the_file_and_what_to_change(pems: dict[str, str]) -> None:
    one_line(serve("--certfile", pems["cert"]), 2, pems["cert"], "holds no private key", "--keyfile")
    one_line(serve("--certfile", pems["key"]), 2, "holds no PEM certificate")
    one_line(serve("--certfile", pems["cert"], "--keyfile", pems["cert"]), 2, "--keyfile", "holds no PEM private key")
    one_line(serve("--certfile", pems["cert"], "--keyfile", pems["other_key"]), 2,
             f"the private key in {pems['other_key']} is not the key of the certificate in {pems['cert']}")


# -- gamesync serve: failures at run time (1) -----------------------------------------------------


def test_a_websocket_port_in_use_names_the_port_and_the_option(listening: int) -> None:
    one_line(serve("--port", str(listening)), 1, f"127.0.0.1:{listening}", "in use", "--port 0")


def test_a_second_node_on_the_default_http_port_is_told_to_pick_another(listening: int) -> None:
    """Two servers (two nodes of a cluster) on one machine with the default --http-port."""
    one_line(serve("--http-port", str(listening)), 1, f"127.0.0.1:{listening} (HTTP)", "in use", "--http-port")


def test_a_host_this_machine_does_not_have() -> None:
    one_line(serve("--host", "192.0.2.1", "--insecure-dev"), 1, "192.0.2.1 is not an address of this machine", "--host")


def test_redis_that_does_not_answer_stops_the_node_instead_of_running_alone() -> None:
    url = f"redis://127.0.0.1:{free_port()}"
    one_line(serve("--redis", url), 1, f"cannot reach Redis at {url}", "--redis")


def test_a_second_ctrl_c_while_shutting_down_stops_at_once_without_a_traceback(tmp_path: Path) -> None:
    """The first SIGINT starts the shutdown, which waits (a little) for a client that does not
    answer its close; the second, during that wait, ends the process at once."""
    port, log_path = free_port(), tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "GAMESYNC_SECRET"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gamesync", "serve", "--port", str(port), "--http-port", "-1",
                                 "--npcs", "5", "--port-file", str(tmp_path / "port")], stderr=log,
                                stdout=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not (tmp_path / "port").exists() or not (tmp_path / "port").read_text().endswith("\n"):
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", port)) as silent:  # a handshake, then never a word
            silent.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            while "shutting down: closing" not in log_path.read_text():
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.005)
            proc.send_signal(signal.SIGINT)
            status = proc.wait(TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = subprocess.CompletedProcess(proc.args, status, "", log_path.read_text())
    one_line(done, 1, "SIGINT again while shutting down: stopped at once")


# -- the other commands ---------------------------------------------------------------------------


def test_bots_mistakes() -> None:
    one_line(gamesync("bots", "http://127.0.0.1:8765"), 2, "http://127.0.0.1:8765", "ws://")
    one_line(gamesync("bots", "ws://127.0.0.1:8765", "--count", "0"), 2, "--count 0")
    one_line(gamesync("bots", "ws://127.0.0.1:8765", "--duration", "-1"), 2, "--duration -1")
    url = f"ws://127.0.0.1:{free_port()}"
    one_line(gamesync("bots", url, "--no-progress"), 1, f"cannot connect to {url}", "is gamesync serve running")


def test_token_mistakes() -> None:
    secret = {"GAMESYNC_SECRET": SECRET}
    one_line(gamesync("token", "--room", "r", "--player", "p", "--ttl", "0", env=secret), 2, "--ttl 0")
    one_line(gamesync("token", "--room", "r", "--player", "p" * 65, env=secret), 2, "--player", "1..64")
    one_line(gamesync("token", "--room", "r", "--player", "p"), 2, "no secret", "GAMESYNC_SECRET")
    one_line(gamesync("token", "--player", "p", env=secret), 2, "needs --room and --player")


def test_publish_mistakes() -> None:
    one_line(gamesync("publish", "--redis", "127.0.0.1:6379", "--all", "{}"), 2, "--redis 127.0.0.1:6379", "redis://")
    one_line(gamesync("publish", "--redis", "redis://127.0.0.1:1", "--all", "{not json"), 2, "DATA is not JSON")
    url = f"redis://127.0.0.1:{free_port()}"
    one_line(gamesync("publish", "--redis", url, "--all", "{}"), 1, "cannot reach Redis", "--redis")


def test_cluster_mistakes(listening: int) -> None:
    one_line(gamesync("cluster", "--nodes", "0"), 2, "--nodes 0")
    one_line(gamesync("cluster", "--port", "0"), 2, "--port 0")
    one_line(gamesync("cluster", "--port", str(listening - 1), "--http-port", "-1"), 1,
             f"127.0.0.1:{listening} (node 2's WebSocket)", "in use", "--port")


def test_no_command_and_unknown_commands_are_one_line() -> None:
    one_line(gamesync(), 2, "required")
    one_line(gamesync("serv"), 2, "invalid choice: 'serv'")
