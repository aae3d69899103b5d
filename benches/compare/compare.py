#!/usr/bin/env python3
"""Helpers for benches/compare/run.sh (standard library only).

Subcommands (the scripts in this folder are the only intended callers):

  freeport N                      print N free loopback TCP ports
  admin-token LOG PID             wait for Coffer's `Admin token: <hex>` line on stderr
  wait-http URL                   wait until URL answers with the wanted status
  bao-setup                       init + unseal OpenBao, wait active, enable kv-v2 at
                                  secret/, wait writable, make read/write tokens
  coffer-setup                    make the bench app and read/write service tokens
  load-coffer / load-bao          load COUNT secrets with 64-byte values
  coffer-id                       print the id of one Coffer secret
  rss PID                         print VmRSS of PID in KiB
  record                          turn one wrk output into a JSON line in a results file
  sum                             one row for a load split over several nodes: req/s
                                  summed, the worst node's latencies
  report                          print the comparison table, the ratios and the goals
  medians                         per (scenario, server), the median over several runs'
                                  results, and the goals on those medians
  startup                         start Coffer on an existing data dir, time start -> first
                                  200 from GET /health, check a secret survived, stop it
  load-envs                       growth.sh: environments E0001... of N secrets each, in
                                  batches from several concurrent clients, timed
  churn                           stalls.sh: a background loop of batch create+delete or
                                  token create+revoke, until SIGTERM
  growth-report / stalls-report   their tables of figures and goals
  rss-summary CSV                 summarise rss_hour.sh's samples; exit 1 if RSS grew
  log-leaks LOG                   exit 1 if a loaded value, a written value or a token
                                  appears in a server log
"""

import argparse
import concurrent.futures
import csv
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse


def die(msg):
    print(f"compare.py: {msg}", file=sys.stderr)
    sys.exit(1)


def value_for(key):
    """The 64-byte value stored under `key` (same on both servers)."""
    return hashlib.sha256(key.encode()).hexdigest()


class Client:
    """A keep-alive HTTP/1.1 client for one loopback server (one per thread)."""

    def __init__(self, addr, timeout=30):
        u = urllib.parse.urlsplit(addr)
        self.host, self.port, self.timeout = u.hostname, u.port, timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        for attempt in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.conn.request(method, path, body=data, headers=hdrs)
                resp = self.conn.getresponse()
                raw = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                try:
                    parsed = json.loads(raw) if raw else None
                except ValueError:
                    parsed = raw.decode(errors="replace")
                return resp.status, parsed
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
                time.sleep(0.05)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def expect(status, body, ok, what):
    if status not in ok:
        die(f"{what}: HTTP {status}: {str(body)[:500]}")
    return body


# ---------------------------------------------------------------- small commands

def cmd_freeport(a):
    socks = []
    for _ in range(a.n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of run.sh counts as gone
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except OSError:
        return False
    return True


def cmd_admin_token(a):
    deadline = time.monotonic() + a.timeout
    pat = re.compile(r"^Admin token: ([0-9a-f]{64})\s*$", re.M)
    while time.monotonic() < deadline:
        try:
            with open(a.log, errors="replace") as f:
                found = pat.findall(f.read())
        except FileNotFoundError:
            found = []
        if len(found) == 1:
            print(found[0])
            return
        if len(found) > 1:
            die(f"more than one 'Admin token:' line in {a.log}")
        if not pid_alive(a.pid):
            die(f"coffer exited before printing its admin token; see {a.log}")
        time.sleep(0.02)
    die(f"no 'Admin token: <64 hex>' line in {a.log} after {a.timeout}s")


def cmd_wait_http(a):
    c = Client(a.url, timeout=2)
    u = urllib.parse.urlsplit(a.url)
    path = u.path + ("?" + u.query if u.query else "")
    want = {int(x) for x in a.status.split(",")}
    deadline = time.monotonic() + a.timeout
    last = None
    while time.monotonic() < deadline:
        try:
            st, body = c.request("GET", path)
            last = (st, body)
            if st in want:
                return
        except (OSError, http.client.HTTPException) as e:
            last = e
        if a.pid and not pid_alive(a.pid):
            die(f"server pid {a.pid} exited while waiting for {a.url}")
        time.sleep(0.05)
    die(f"{a.url} did not answer {a.status} within {a.timeout}s (last: {last})")


def read_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    die(f"no VmRSS for pid {pid}")


def cmd_rss(a):
    print(read_rss_kib(a.pid))


# ---------------------------------------------------------------- OpenBao

def bao_cli(a, *args, token=None, stdin=None):
    env = dict(os.environ, BAO_ADDR=a.addr, VAULT_ADDR=a.addr)
    env.pop("BAO_TOKEN", None)
    if token:
        env["BAO_TOKEN"] = token
    p = subprocess.run([a.bao, *args], env=env, input=stdin, capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        die(f"bao {' '.join(args[:3])} failed ({p.returncode}): {p.stderr.strip()[:500]}")
    return p.stdout


def cmd_bao_setup(a):
    c = Client(a.addr, timeout=5)
    deadline = time.monotonic() + a.timeout

    def wait(what, check):
        last = None
        while time.monotonic() < deadline:
            try:
                r = check()
                if r is True:
                    return
                last = r
            except (OSError, http.client.HTTPException) as e:
                last = e
            time.sleep(0.1)
        die(f"OpenBao: timed out waiting for {what} (last: {str(last)[:300]})")

    # listener up (uninitialised + sealed answers 501)
    wait("listener", lambda: c.request("GET", "/v1/sys/health")[0] in (200, 429, 472, 473, 501, 503, 530) or "no")
    init = json.loads(bao_cli(a, "operator", "init", "-key-shares=1", "-key-threshold=1", "-format=json"))
    unseal_key, root = init["unseal_keys_b64"][0], init["root_token"]
    bao_cli(a, "operator", "unseal", unseal_key)

    def active():
        st, body = c.request("GET", "/v1/sys/health")
        return True if st == 200 else (st, body)
    wait("active (GET /v1/sys/health == 200)", active)

    bao_cli(a, "secrets", "enable", "-path=secret", "kv-v2", token=root)
    hdr = {"X-Vault-Token": root}

    def writable():
        st, body = c.request("POST", "/v1/secret/data/bench/_probe",
                             {"data": {"value": "probe"}}, hdr)
        return True if 200 <= st < 300 else (st, body)
    wait("kv-v2 at secret/ to accept writes", writable)

    bao_cli(a, "policy", "write", "bench-read", "-", token=root,
            stdin='path "secret/data/bench/*" { capabilities = ["read"] }\n')
    bao_cli(a, "policy", "write", "bench-write", "-", token=root,
            stdin='path "secret/data/bench/*" { capabilities = ["create", "update"] }\n')
    tokens = {}
    for name in ("read", "write"):
        out = json.loads(bao_cli(a, "token", "create", f"-policy=bench-{name}", "-ttl=24h",
                                 "-format=json", token=root))
        tokens[name] = out["auth"]["client_token"]
    # prove the scoped tokens do what they should before any load is driven with them
    expect(*c.request("POST", "/v1/secret/data/bench/_probe", {"data": {"value": "probe2"}},
                      {"X-Vault-Token": tokens["write"]}), (200, 204), "OpenBao write token")
    expect(*c.request("GET", "/v1/secret/data/bench/_probe", None,
                      {"X-Vault-Token": tokens["read"]}), (200,), "OpenBao read token")
    with open(a.out, "w") as f:
        json.dump({"root_token": root, "unseal_key": unseal_key,
                   "read_token": tokens["read"], "write_token": tokens["write"]}, f)


def cmd_load_bao(a):
    keys = [f"{a.prefix}{i:0{a.width}d}" for i in range(1, a.count + 1)]
    hdr = {"X-Vault-Token": a.token}
    local = threading.local()
    errors = []

    def put(key):
        c = getattr(local, "c", None)
        if c is None:
            c = local.c = Client(a.addr)
        st, body = c.request("POST", f"/v1/secret/data/bench/{key}",
                             {"data": {"value": value_for(key)}}, hdr)
        if not 200 <= st < 300:
            errors.append((key, st, str(body)[:200]))

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(a.threads) as pool:
        for i in range(0, len(keys), 1000):
            list(pool.map(put, keys[i:i + 1000]))
            if errors:
                die(f"OpenBao load failed: {errors[:3]}")
            if time.monotonic() - t0 > a.timeout:
                die(f"OpenBao load did not finish within {a.timeout}s ({i} done)")
    dt = time.monotonic() - t0
    print(json.dumps({"count": a.count, "seconds": round(dt, 3), "per_second": round(a.count / dt, 1)}))


# ---------------------------------------------------------------- Coffer

def user_hdr(token):
    return {"Authorization": f"Bearer User {token}"}


def cmd_coffer_setup(a):
    c = Client(a.addr)
    new_app = {"name": a.app_name}
    if a.env:  # an app with this one environment instead of the three default ones
        new_app["environments"] = [a.env]
    app = expect(*c.request("POST", "/v1/apps/", new_app, user_hdr(a.admin_token)),
                 (201,), "create app")
    env = a.env or "Development"
    out = {"app_id": app["id"],
           "environments": {e["name"]: e["id"] for e in app.get("environments", [])}}
    if env not in out["environments"]:
        die(f"new app has no {env} environment: {app}")
    if a.tokens:
        for name, perms in (("read", ["read"]), ("write", ["create", "update"])):
            tok = expect(*c.request("POST", "/v1/tokens/", {
                "name": f"bench-{name}", "type": "service", "appId": app["id"],
                "environments": [env], "permissions": perms,
            }, user_hdr(a.admin_token)), (200, 201), f"create {name} service token")
            out[f"{name}_token"] = tok["token"]
    with open(a.out, "w") as f:
        json.dump(out, f)


def cmd_load_coffer(a):
    c = Client(a.addr, timeout=120)
    path = f"/v1/secrets/?app_id={a.app_id}&env=Development"
    keys = [f"{a.prefix}{i:0{a.width}d}" for i in range(1, a.count + 1)]
    t0 = time.monotonic()
    for i in range(0, len(keys), a.batch):
        batch = [{"key": k, "value": value_for(k)} for k in keys[i:i + a.batch]]
        st, body = c.request("POST", path, {"secrets": batch}, user_hdr(a.token))
        expect(st, body, (200,), f"Coffer load batch at {i}")
        if not isinstance(body, list) or len(body) != len(batch):
            die(f"Coffer load batch at {i}: expected {len(batch)} created secrets, got {str(body)[:200]}")
        if time.monotonic() - t0 > a.timeout:
            die(f"Coffer load did not finish within {a.timeout}s ({i} done)")
    dt = time.monotonic() - t0
    print(json.dumps({"count": a.count, "seconds": round(dt, 3), "per_second": round(a.count / dt, 1)}))


def coffer_get_key(c, app_id, key, token, env="Development"):
    st, body = c.request("GET", f"/v1/secrets/?app_id={app_id}&env={env}&key={key}", None,
                         user_hdr(token))
    return st, body


def cmd_coffer_id(a):
    st, body = coffer_get_key(Client(a.addr), a.app_id, a.key, a.token)
    expect(st, body, (200,), f"read {a.key}")
    if not isinstance(body, list) or len(body) != 1:
        die(f"expected exactly one secret named {a.key}, got {str(body)[:300]}")
    if body[0].get("value") != value_for(a.key):
        die(f"{a.key} has the wrong value: {body[0].get('value')!r}")
    print(body[0]["id"])


def cmd_startup(a):
    """Start Coffer on a loaded data dir; time to the first 200 from GET /health."""
    host, port = a.bind.rsplit(":", 1)
    port = int(port)
    req = f"GET /health HTTP/1.1\r\nHost: {a.bind}\r\nConnection: close\r\n\r\n".encode()
    log = open(a.log, "ab")
    t0 = time.monotonic()
    proc = subprocess.Popen([a.bin, "serve", "--data-dir", a.data_dir, "--bind", a.bind],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    with open(a.pidfile, "w") as f:
        f.write(str(proc.pid))
    first_connect = None
    ready = None
    polls = 0
    try:
        while ready is None:
            now = time.monotonic()
            if now - t0 > a.timeout:
                die(f"Coffer did not answer GET /health with 200 within {a.timeout}s")
            if proc.poll() is not None:
                die(f"Coffer exited with {proc.returncode} during start-up; see {a.log}")
            polls += 1
            try:
                with socket.create_connection((host, port), timeout=1) as s:
                    if first_connect is None:
                        first_connect = time.monotonic() - t0
                    s.sendall(req)
                    data = b""
                    while b"\r\n" not in data:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    if data.split(b" ", 2)[1:2] == [b"200"]:
                        ready = time.monotonic() - t0
                        break
            except OSError:
                pass
            time.sleep(a.poll_ms / 1000)
        rss = read_rss_kib(proc.pid)
        # the data must have survived the restart
        st, body = coffer_get_key(Client(f"http://{a.bind}"), a.app_id, a.check_key, a.admin_token,
                                  a.env)
        ok = st == 200 and isinstance(body, list) and len(body) == 1 \
            and body[0].get("value") == value_for(a.check_key)
        print(json.dumps({"ready_ms": round(ready * 1000, 1),
                          "first_connect_ms": round(first_connect * 1000, 1) if first_connect else None,
                          "polls": polls, "rss_kib": rss, "check_read_ok": ok,
                          "check_read_status": st}))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        os.unlink(a.pidfile)


def env_name(i):
    """The name of growth.sh's environment number i (from 1)."""
    return f"E{i:04d}"


def key_width(per_env):
    return max(4, len(str(per_env)))


def cmd_load_envs(a):
    """Load environments E<first>..E<last> (made first where missing) with PER_ENV
    secrets each, KEY_0001..., in batches of at most 1,000, from CLIENTS concurrent
    keep-alive clients. Prints the time the batches took, from the first batch request to
    the last answer (the environments' creation timed apart)."""
    hdr = user_hdr(a.token)
    c = Client(a.addr, timeout=120)
    listed = expect(*c.request("GET", f"/v1/environments/?app_id={a.app_id}", None, hdr), (200,),
                    "list environments")
    present = {e["name"] for e in listed["data"]}
    names = [env_name(i) for i in range(a.first, a.last + 1)]
    local = threading.local()

    def client():
        if getattr(local, "c", None) is None:
            local.c = Client(a.addr, timeout=120)
        return local.c

    def make_env(name):
        st, body = client().request("POST", f"/v1/environments/?app_id={a.app_id}", {"name": name}, hdr)
        expect(st, body, (201,), f"create environment {name}")

    width = key_width(a.per_env)

    def post_batch(job):
        name, start = job
        batch = [{"key": f"KEY_{i:0{width}d}", "value": value_for(f"KEY_{i:0{width}d}")}
                 for i in range(start, min(start + a.batch, a.per_env + 1))]
        st, body = client().request("POST", f"/v1/secrets/?app_id={a.app_id}&env={name}",
                                    {"secrets": batch}, hdr)
        expect(st, body, (200,), f"batch {name} from KEY_{start:0{width}d}")
        if not isinstance(body, list) or len(body) != len(batch):
            die(f"batch {name} from {start}: expected {len(batch)} created secrets, got {str(body)[:200]}")
        return len(batch)

    deadline = time.monotonic() + a.timeout

    def run(fn, jobs):
        done = 0
        with concurrent.futures.ThreadPoolExecutor(a.clients) as pool:
            for n in pool.map(fn, jobs):
                done += n or 0
                if time.monotonic() > deadline:
                    die(f"load-envs did not finish within {a.timeout}s")
        return done

    t0 = time.monotonic()
    run(make_env, [n for n in names if n not in present])
    t1 = time.monotonic()
    loaded = run(post_batch, [(n, s) for n in names for s in range(1, a.per_env + 1, a.batch)])
    t2 = time.monotonic()
    print(json.dumps({"envs": len(names), "envs_created": len(names) - len(present & set(names)),
                      "env_seconds": round(t1 - t0, 3), "secrets": loaded,
                      "seconds": round(t2 - t1, 3), "per_second": round(loaded / max(t2 - t1, 1e-9), 1),
                      "clients": a.clients, "batch": a.batch}))


class Stop:
    """Set by SIGTERM/SIGINT: a background loop finishes the operation it is in, then
    reports."""
    stop = False

    @classmethod
    def install(cls):
        def handler(signum, frame):
            cls.stop = True
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def cmd_churn(a):
    """A background load for stalls.sh, until SIGTERM: `batches` creates a batch of
    BATCH secrets in ENV and deletes it again, over and over; `tokens` creates a service
    token on ENV and revokes it, over and over. Any failed request stops it with an
    error. Writes {kind, ops, seconds, ops_per_second, secrets_per_second} to --out
    (an op is one create or one delete/revoke)."""
    Stop.install()
    c = Client(a.addr, timeout=60)
    hdr = user_hdr(a.token)
    path = f"/v1/secrets/?app_id={a.app_id}&env={a.env}"
    ops = secrets_written = 0
    t0 = time.monotonic()
    while not Stop.stop:
        if a.kind == "batches":
            batch = [{"key": f"CHURN_{i:04d}", "value": value_for(f"CHURN_{i:04d}")}
                     for i in range(1, a.batch + 1)]
            body = expect(*c.request("POST", path, {"secrets": batch}, hdr), (200,), "churn: create batch")
            ids = [s["id"] for s in body]
            expect(*c.request("DELETE", path, {"secrets": ids}, hdr), (200,), "churn: delete batch")
            secrets_written += 2 * len(batch)
        else:
            tok = expect(*c.request("POST", "/v1/tokens/", {
                "name": "churn", "type": "service", "appId": a.app_id, "environments": [a.env],
                "permissions": ["read"]}, hdr), (200, 201), "churn: create token")
            expect(*c.request("DELETE", f"/v1/tokens/{tok['id']}/", None, hdr), (204,), "churn: revoke token")
        ops += 2
    dt = time.monotonic() - t0
    with open(a.out, "w") as f:
        json.dump({"kind": a.kind, "ops": ops, "seconds": round(dt, 3),
                   "ops_per_second": round(ops / max(dt, 1e-9), 1),
                   "secrets_per_second": round(secrets_written / max(dt, 1e-9), 1)}, f)


def goal_table(rows):
    """Print (figure, goal, measured, met) rows; return how many goals were not met."""
    head = ("figure", "goal", "measured", "met")
    w = [max(len(str(r[i])) for r in rows + [head]) for i in range(4)]
    line = lambda r: "  ".join(str(v).ljust(w[i]) for i, v in enumerate(r)).rstrip()
    print(line(head))
    print("-" * (sum(w) + 6))
    for r in rows:
        print(line(r))
    return sum(1 for r in rows if r[3] in ("NO", "n/a"))


def verdict(ok):
    return "n/a" if ok is None else ("yes" if ok else "NO")


def cmd_growth_report(a):
    by = {r["scenario"]: r for r in load_results(a.results)}
    small, large = by.get("read-small"), by.get("read-large")
    total = a.envs * a.per_env
    rows = []
    for k, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
        if small and large and problem(small) is None and problem(large) is None:
            ratio = large[k] / small[k]
            rows.append((f"read {label}, {total:,} vs {a.per_env:,} secrets", "<= 1.2x",
                         f"{ratio:.2f}x ({large[k]:.2f} vs {small[k]:.2f} ms)", verdict(ratio <= 1.2)))
        else:
            rows.append((f"read {label}, {total:,} vs {a.per_env:,} secrets", "<= 1.2x",
                         "n/a (a read run failed)", "n/a"))
    mib = lambda kib: kib / 1024
    rows.append((f"RSS after loading {total:,} secrets", "<= 128 MiB", f"{mib(a.rss_load_kib):.1f} MiB",
                 verdict(mib(a.rss_load_kib) <= 128)))
    rows.append(("RSS after the reads", "<= 128 MiB", f"{mib(a.rss_read_kib):.1f} MiB",
                 verdict(mib(a.rss_read_kib) <= 128)))
    starts = json.loads(a.startups)
    ms = [s["ready_ms"] for s in starts]
    intact = all(s["check_read_ok"] for s in starts)
    med = statistics.median(ms) if ms else None
    rows.append(("start to first 200 from GET /health (median)", "<= 300 ms",
                 f"{med:.1f} ms (runs: {', '.join('%.1f' % m for m in ms)})" if ms else "n/a",
                 verdict(None if med is None else med <= 300)))
    rows.append(("a secret read back after each restart", "yes", "yes" if intact else "NO", verdict(intact)))
    rows.append((f"data directory after loading {total:,} secrets", "<= 450 MiB",
                 f"{mib(a.data_load_kib):.1f} MiB", verdict(mib(a.data_load_kib) <= 450)))
    rows.append(("data directory after the reads (audited)", "<= 450 MiB", f"{mib(a.data_kib):.1f} MiB",
                 verdict(mib(a.data_kib) <= 450)))
    imp = json.loads(a.import_json)
    rows.append((f"bulk import of {imp['secrets']:,} secrets into {imp['envs']} environment(s), "
                 f"batches of {imp['batch']:,}, {imp['clients']} clients", "<= 3 s",
                 f"{imp['seconds']:.2f} s ({imp['per_second']:,.0f}/s)", verdict(imp["seconds"] <= 3)))
    print(f"Growth: {a.envs:,} environments of {a.per_env:,} secrets (64-byte values)")
    missed = goal_table(rows)
    load = json.loads(a.load_json)
    print()
    print(f"loading the other {load['envs']:,} environments: {load['secrets']:,} secrets in "
          f"{load['seconds']:.1f} s ({load['per_second']:,.0f}/s, {load['clients']} clients; "
          f"making the environments took {load['env_seconds']:.1f} s more)")
    for name, r in (("small", small), ("large", large)):
        if r:
            print(f"read with {a.per_env if name == 'small' else total:,} secrets: {short(r)}")
    if missed:
        print(f"{missed} goal(s) not met")


def cmd_stalls_report(a):
    by = {r["scenario"]: r for r in load_results(a.results)}
    alone = by.get("alone")
    rows = []
    print(f"{'reads':<28}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}  background")
    print("-" * 78)
    for scenario, label, bg_file in (("alone", "alone", None),
                                     ("batches", "with 1,000-entry batches", a.batches),
                                     ("tokens", "with token create/revoke", a.tokens)):
        r = by.get(scenario)
        bg = ""
        if bg_file:
            try:
                with open(bg_file) as f:
                    b = json.load(f)
                bg = f"{b['ops_per_second']:,.1f} ops/s"
                if b["kind"] == "batches":
                    bg += f" ({b['secrets_per_second']:,.0f} secrets written or deleted/s)"
            except (OSError, ValueError):
                bg = "no report from the background loop"
        if r and "rps" in r:
            p = problem(r)
            print(f"{label:<28}{r['rps']:>9.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}  {bg}"
                  + (f"  ** {p}" if p else ""))
            if scenario != "alone":
                ok = alone and problem(alone) is None and problem(r) is None
                ratio = r["p99_ms"] / alone["p99_ms"] if ok else None
                rows.append((f"read p99 {label} / alone", "<= 2x",
                             f"{ratio:.2f}x" if ok else "n/a", verdict(None if ratio is None else ratio <= 2)))
        else:
            print(f"{label:<28}{'-':>9}{'-':>9}{'-':>9}  FAILED: {problem(r) if r else 'no result'}")
            if scenario != "alone":
                rows.append((f"read p99 {label} / alone", "<= 2x", "n/a", "n/a"))
    print()
    missed = goal_table(rows)
    if missed:
        print(f"{missed} goal(s) not met")


# ---------------------------------------------------------------- results

def cmd_record(a):
    with open(a.wrk_output, errors="replace") as f:
        text = f.read()
    m = re.search(r"^COMPARE_RESULT (\{.*\})\s*$", text, re.M)
    if m:
        res = json.loads(m.group(1))
    else:
        res = {"failed": f"wrk produced no COMPARE_RESULT line (exit {a.exit_code}): "
                         + text.strip()[-300:]}
    res.update(scenario=a.scenario, server=a.server)
    with open(a.results, "a") as f:
        f.write(json.dumps(res) + "\n")
    print(f"  {a.scenario:<7} {a.server:<8} {short(res)}")


def cmd_sum(a):
    """One row for load split over several nodes at once: requests/s and counts are
    summed; latencies are the worst node's (each node's own row has its own)."""
    parts = a.parts.split(",")
    latest = {}
    with open(a.results) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if r["scenario"] == a.scenario and r["server"] in parts:
                    latest[r["server"]] = r
    rows = [latest.get(p) for p in parts]
    if any(r is None or "rps" not in r for r in rows):
        res = {"failed": "a node's run produced no result"}
    else:
        res = {
            "requests": sum(r["requests"] for r in rows),
            "duration_s": max(r["duration_s"] for r in rows),
            "rps": sum(r["rps"] for r in rows),
            "non2xx": sum(r["non2xx"] for r in rows),
            "socket_errors": {k: sum(r["socket_errors"][k] for r in rows)
                              for k in rows[0]["socket_errors"]},
            "first_bad_status": next((r["first_bad_status"] for r in rows if r["first_bad_status"]), 0),
            "first_bad_body": next((r["first_bad_body"] for r in rows if r["first_bad_status"]), ""),
        }
        for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
            res[k] = max(r[k] for r in rows)
    res.update(scenario=a.scenario, server=a.server, nodes=parts)
    with open(a.results, "a") as f:
        f.write(json.dumps(res) + "\n")
    print(f"  {a.scenario:<7} {a.server:<8} {short(res)}  (sum of {len(parts)} nodes; worst node's latency)")


def problem(r):
    """Why a result may not be trusted, or None."""
    if "failed" in r:
        return r["failed"]
    errs = sum(r["socket_errors"].values())
    if r["non2xx"] or errs:
        bits = []
        if r["non2xx"]:
            body = " ".join(r["first_bad_body"].split())[:100]
            bits.append(f"{r['non2xx']} non-2xx (first: {r['first_bad_status']} {body})")
        if errs:
            bits.append(f"socket errors {r['socket_errors']}")
        return "; ".join(bits)
    if r["requests"] == 0:
        return "no requests completed"
    return None


def short(r):
    p = problem(r)
    if p and "rps" not in r:
        return "FAILED: " + p
    s = f"{r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"
    return s + (f"  ** {p}" if p else "")


def cmd_report(a):
    rows = []
    with open(a.results) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    by = {(r["scenario"], r["server"]): r for r in rows}
    print(f"{'scenario':<9}{'server':<9}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}  status")
    print("-" * 70)
    for r in rows:
        p = problem(r)
        if "rps" in r:
            print(f"{r['scenario']:<9}{r['server']:<9}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}"
                  f"{r['p99_ms']:>9.2f}{r['non2xx']:>9}  {'ERRORS: ' + p if p else 'ok'}")
        else:
            print(f"{r['scenario']:<9}{r['server']:<9}{'-':>10}{'-':>9}{'-':>9}{'-':>9}  FAILED: {p}")

    def good(key):
        r = by.get(key)
        return r if r and problem(r) is None else None

    print()
    print("Ratios (a result with errors gives no ratio):")
    for sc in ("read", "create", "update"):
        c, o = good((sc, "coffer")), good((sc, "openbao"))
        if c and o:
            print(f"  {sc:<7} Coffer/OpenBao req/s = {c['rps'] / o['rps']:.2f}x"
                  f"   (p99 {c['p99_ms']:.2f} ms vs {o['p99_ms']:.2f} ms)")
        elif (sc, "coffer") in by or (sc, "openbao") in by:
            print(f"  {sc:<7} Coffer/OpenBao req/s = n/a")
    c, h = good(("read", "coffer")), good(("health", "coffer"))
    if c and h:
        print(f"  Coffer read/health: req/s = {c['rps'] / h['rps']:.2f}, "
              f"p99 = {c['p99_ms'] / h['p99_ms']:.2f}x "
              f"({c['p99_ms']:.2f} ms vs {h['p99_ms']:.2f} ms)")
    elif ("read", "coffer") in by:
        print("  Coffer read/health: n/a")
    summed = sorted({r["server"] for r in rows if "nodes" in r})
    if summed:
        print()
        for server in summed:
            nodes = next(r["nodes"] for r in rows if r.get("server") == server)
            print(f"{server}: the sum of {', '.join(nodes)}, driven at once (req/s summed; "
                  "p50/p99 are the worse node's)")
    bad = [r for r in rows if problem(r)]
    if bad:
        print()
        print(f"WARNING: {len(bad)} scenario(s) had errors; their numbers are not valid measurements.")
    if any(k[1] == "coffer" for k in by):
        print()
        print_goals({k: r for k, r in by.items() if problem(r) is None})


# The project's goals for this benchmark: (name, numerator, denominator, metric, bound,
# "min" or "max"). Each is a ratio of two measured figures; a missing or failed figure
# gives "n/a", never "met".
GOALS = (
    ("reads: Coffer req/s >= 10x OpenBao's", ("read", "coffer"), ("read", "openbao"), "rps", 10, "min"),
    ("durable creates: Coffer req/s >= 5x OpenBao's", ("create", "coffer"), ("create", "openbao"),
     "rps", 5, "min"),
    ("updates: Coffer req/s >= 5x OpenBao's", ("update", "coffer"), ("update", "openbao"), "rps", 5, "min"),
    ("read p99: Coffer <= 1/10 of OpenBao's", ("read", "coffer"), ("read", "openbao"), "p99_ms", 0.1, "max"),
    ("reads: Coffer req/s >= 0.6x its GET /health", ("read", "coffer"), ("health", "coffer"), "rps", 0.6, "min"),
)


def goal_rows(by, coffer="coffer"):
    """(goal, measured text, verdict) for each goal, from `by`: (scenario, server) ->
    a result with rps/p99_ms (only results without errors). `coffer` names the server
    whose rows stand for Coffer."""
    out = []
    for name, num, den, metric, bound, kind in GOALS:
        num = (num[0], coffer if num[1] == "coffer" else num[1])
        den = (den[0], coffer if den[1] == "coffer" else den[1])
        a, b = by.get(num), by.get(den)
        if not a or not b or not b[metric]:
            out.append((name, "n/a (a figure is missing or had errors)", "n/a"))
            continue
        ratio = a[metric] / b[metric]
        unit = "req/s" if metric == "rps" else "ms"
        fmt = "%.0f" if metric == "rps" else "%.2f"
        measured = f"{ratio:.2f}x ({fmt % a[metric]} vs {fmt % b[metric]} {unit})"
        met = ratio >= bound if kind == "min" else ratio <= bound
        out.append((name, measured, "met" if met else "NOT MET"))
    return out


def print_goals(by, coffer="coffer", title="Goals"):
    rows = goal_rows(by, coffer)
    w = max(len(r[0]) for r in rows)
    m = max(len(r[1]) for r in rows)
    print(f"{title}:")
    print(f"  {'goal':<{w}}  {'measured':<{m}}  verdict")
    print("  " + "-" * (w + m + 11))
    for name, measured, verdict in rows:
        print(f"  {name:<{w}}  {measured:<{m}}  {verdict}")


def load_results(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def cmd_medians(a):
    """Median of req/s, p50 and p99 per (scenario, server) over the runs given; runs with
    errors are left out of a median (and counted). Rows of --results-b (a second Coffer
    binary, run with COMPARE_ONLY=coffer) are shown as server `coffer-b`."""
    runs = {}  # (scenario, server) -> [result, ...] in run order
    bad = {}

    def add(path, rename=None):
        for r in load_results(path):
            server = rename.get(r["server"], r["server"]) if rename else r["server"]
            key = (r["scenario"], server)
            if problem(r) is None:
                runs.setdefault(key, []).append(r)
            else:
                bad[key] = bad.get(key, 0) + 1
                runs.setdefault(key, [])

    for path in a.results:
        add(path)
    for path in a.results_b or []:
        add(path, {"coffer": "coffer-b"})
    med = {}
    print(f"{a.label}: medians over {len(a.results)} run(s)"
          + (f" (and {len(a.results_b)} of the second Coffer binary)" if a.results_b else ""))
    print(f"{'scenario':<9}{'server':<10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'runs':>6}  req/s of each run")
    print("-" * 78)
    order = {"read": 0, "create": 1, "update": 2, "health": 3}
    for key in sorted(runs, key=lambda k: (order.get(k[0], 9), k[0], k[1])):
        rs = runs[key]
        note = f"  ({bad[key]} with errors left out)" if key in bad else ""
        if not rs:
            print(f"{key[0]:<9}{key[1]:<10}{'-':>10}{'-':>9}{'-':>9}{0:>6}{note}")
            continue
        m = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms", "p99_ms")}
        med[key] = m
        each = ", ".join(f"{r['rps']:.0f}" for r in rs)
        print(f"{key[0]:<9}{key[1]:<10}{m['rps']:>10.0f}{m['p50_ms']:>9.2f}{m['p99_ms']:>9.2f}"
              f"{len(rs):>6}  {each}{note}")
    print()
    print_goals(med, title=f"Goals ({a.label}, on the medians)")
    if a.results_b:
        print()
        print_goals(med, coffer="coffer-b",
                    title=f"Goals ({a.label}, second Coffer binary, on the medians)")


# ---------------------------------------------------------------- rss_hour.sh

def least_squares_slope(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def cmd_rss_summary(a):
    with open(a.csv) as f:
        rows = [{k: int(v) for k, v in r.items()} for r in csv.DictReader(f)]
    if len(rows) < 3:
        die(f"{a.csv}: {len(rows)} samples, at least 3 are needed")
    first, last = rows[0], rows[-1]
    warmup = a.warmup
    if warmup >= last["elapsed_s"]:
        warmup = last["elapsed_s"] // 4
        print(f"warm-up {a.warmup} s is not shorter than the run; using {warmup} s")
    after = [r for r in rows if r["elapsed_s"] >= warmup]
    warm = after[0]
    mib = lambda kib: kib / 1024
    slope = least_squares_slope([r["requests"] / 1e6 for r in after],
                                [mib(r["rss_kib"]) for r in after])
    requests = last["requests"] - first["requests"]
    after_requests = last["requests"] - warm["requests"]
    secs = last["elapsed_s"] - first["elapsed_s"]
    growth = mib(last["rss_kib"] - warm["rss_kib"])
    growth_pct = 100 * (last["rss_kib"] - warm["rss_kib"]) / warm["rss_kib"]
    non2xx = last["non2xx"] - first["non2xx"]
    print(f"samples: {len(rows)} over {secs} s ({a.csv})")
    print(f"requests served: {requests:,} ({requests / max(secs, 1):,.0f}/s), non-2xx: {non2xx}")
    print(f"RSS at start of load: {mib(first['rss_kib']):.1f} MiB")
    print(f"RSS after warm-up ({warm['elapsed_s']} s, {warm['requests'] - first['requests']:,} requests): "
          f"{mib(warm['rss_kib']):.1f} MiB")
    print(f"RSS at end: {mib(last['rss_kib']):.1f} MiB ({growth:+.1f} MiB, {growth_pct:+.1f} % since warm-up)")
    print(f"RSS max: {mib(max(r['rss_kib'] for r in rows)):.1f} MiB; after warm-up: "
          f"min {mib(min(r['rss_kib'] for r in after)):.1f}, max {mib(max(r['rss_kib'] for r in after)):.1f} MiB")
    print(f"slope after warm-up: {slope:+.3f} MiB per million requests "
          f"({slope * after_requests / 1e6:+.1f} MiB over the {after_requests:,} requests after warm-up)")
    print(f"secrets: {first['secrets']} -> {last['secrets']}; audit chain (entries written, "
          f"trimmed ones included): {first['audit_entries']:,} -> {last['audit_entries']:,}; data directory: "
          f"{mib(first['data_dir_bytes'] / 1024):.1f} -> {mib(last['data_dir_bytes'] / 1024):.1f} MiB")
    print("  elapsed   requests   RSS MiB    audit chain  data dir MiB")
    marks = sorted({warm["elapsed_s"]} | {m for m in range(0, secs + 1, max(secs // 12, 1))})
    shown = sorted({next(i for i, r in enumerate(rows) if r["elapsed_s"] >= m) for m in marks}
                   | {len(rows) - 1})
    for r in (rows[i] for i in shown):
        print(f"  {r['elapsed_s']:>5} s {r['requests'] - first['requests']:>10,} {mib(r['rss_kib']):>9.1f}"
              f" {r['audit_entries']:>14,} {mib(r['data_dir_bytes'] / 1024):>13.1f}")
    failed = []
    if growth_pct > a.max_growth_pct:
        failed.append(f"RSS grew {growth_pct:.1f} % after warm-up (limit {a.max_growth_pct:g} %)")
    if non2xx:
        failed.append(f"{non2xx} non-2xx responses")
    if failed:
        print("FAIL: " + "; ".join(failed))
        sys.exit(1)
    print(f"ok: RSS within {a.max_growth_pct:g} % of its warm-up value, every response 2xx")


def cmd_log_leaks(a):
    loaded = {value_for(f"{a.prefix}{i:0{a.width}d}") for i in range(1, a.count + 1)}
    tokens = [t for t in a.token if t]
    hex64 = re.compile(r"[0-9a-f]{64}")   # compare.py's value_for(key)
    written = re.compile(r"v[0-9]{63}")   # lua/common.lua's value(n)
    lines = leaks = 0
    with open(a.log, errors="replace") as f:
        for line in f:
            lines += 1
            # the admin token's lines at start-up are how an operator receives it
            if line.startswith(("Admin token: ", "Admin phaseToken: ")):
                continue
            if (written.search(line) or not loaded.isdisjoint(hex64.findall(line))
                    or any(t in line for t in tokens)):
                leaks += 1
    if leaks:
        die(f"{a.log}: {leaks} line(s) hold a secret value or a token")
    print(f"log: {lines:,} lines, no secret value or token in them")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("freeport"); s.add_argument("n", type=int, nargs="?", default=1)
    s.set_defaults(f=cmd_freeport)

    s = sub.add_parser("admin-token"); s.add_argument("log"); s.add_argument("pid", type=int)
    s.add_argument("--timeout", type=float, default=60); s.set_defaults(f=cmd_admin_token)

    s = sub.add_parser("wait-http"); s.add_argument("url"); s.add_argument("--status", default="200")
    s.add_argument("--pid", type=int); s.add_argument("--timeout", type=float, default=60)
    s.set_defaults(f=cmd_wait_http)

    s = sub.add_parser("rss"); s.add_argument("pid", type=int); s.set_defaults(f=cmd_rss)

    s = sub.add_parser("bao-setup"); s.add_argument("--bao", required=True)
    s.add_argument("--addr", required=True); s.add_argument("--out", required=True)
    s.add_argument("--timeout", type=float, default=120); s.set_defaults(f=cmd_bao_setup)

    for name, fn in (("load-bao", cmd_load_bao), ("load-coffer", cmd_load_coffer)):
        s = sub.add_parser(name); s.add_argument("--addr", required=True)
        s.add_argument("--token", required=True); s.add_argument("--count", type=int, required=True)
        s.add_argument("--prefix", default="KEY_"); s.add_argument("--width", type=int, default=4)
        s.add_argument("--timeout", type=float, default=900)
        if name == "load-bao":
            s.add_argument("--threads", type=int, default=8)
        else:
            s.add_argument("--app-id", required=True); s.add_argument("--batch", type=int, default=1000)
        s.set_defaults(f=fn)

    s = sub.add_parser("coffer-setup"); s.add_argument("--addr", required=True)
    s.add_argument("--admin-token", required=True); s.add_argument("--out", required=True)
    s.add_argument("--app-name", default="bench"); s.add_argument("--tokens", action="store_true")
    s.add_argument("--env", help="make the app with this one environment (default: the three default ones; "
                                 "tokens on Development)")
    s.set_defaults(f=cmd_coffer_setup)

    s = sub.add_parser("coffer-id"); s.add_argument("--addr", required=True)
    s.add_argument("--token", required=True); s.add_argument("--app-id", required=True)
    s.add_argument("--key", required=True); s.set_defaults(f=cmd_coffer_id)

    s = sub.add_parser("startup"); s.add_argument("--bin", required=True)
    s.add_argument("--data-dir", required=True); s.add_argument("--bind", required=True)
    s.add_argument("--log", required=True); s.add_argument("--pidfile", required=True)
    s.add_argument("--admin-token", required=True); s.add_argument("--app-id", required=True)
    s.add_argument("--check-key", required=True); s.add_argument("--env", default="Development")
    s.add_argument("--poll-ms", type=float, default=2)
    s.add_argument("--timeout", type=float, default=120); s.set_defaults(f=cmd_startup)

    s = sub.add_parser("load-envs"); s.add_argument("--addr", required=True)
    s.add_argument("--token", required=True); s.add_argument("--app-id", required=True)
    s.add_argument("--first", type=int, default=1); s.add_argument("--last", type=int, required=True)
    s.add_argument("--per-env", type=int, required=True); s.add_argument("--batch", type=int, default=1000)
    s.add_argument("--clients", type=int, default=4); s.add_argument("--timeout", type=float, default=3600)
    s.set_defaults(f=cmd_load_envs)

    s = sub.add_parser("churn"); s.add_argument("--kind", choices=("batches", "tokens"), required=True)
    s.add_argument("--addr", required=True); s.add_argument("--token", required=True)
    s.add_argument("--app-id", required=True); s.add_argument("--env", required=True)
    s.add_argument("--batch", type=int, default=1000); s.add_argument("--out", required=True)
    s.set_defaults(f=cmd_churn)

    s = sub.add_parser("growth-report"); s.add_argument("--results", required=True)
    s.add_argument("--envs", type=int, required=True); s.add_argument("--per-env", type=int, required=True)
    s.add_argument("--rss-load-kib", type=int, required=True); s.add_argument("--rss-read-kib", type=int, required=True)
    s.add_argument("--data-load-kib", type=int, required=True)
    s.add_argument("--data-kib", type=int, required=True); s.add_argument("--startups", required=True)
    s.add_argument("--import-json", required=True); s.add_argument("--load-json", required=True)
    s.set_defaults(f=cmd_growth_report)

    s = sub.add_parser("stalls-report"); s.add_argument("--results", required=True)
    s.add_argument("--batches", required=True); s.add_argument("--tokens", required=True)
    s.set_defaults(f=cmd_stalls_report)

    s = sub.add_parser("record"); s.add_argument("--scenario", required=True)
    s.add_argument("--server", required=True); s.add_argument("--wrk-output", required=True)
    s.add_argument("--results", required=True); s.add_argument("--exit-code", default="?")
    s.set_defaults(f=cmd_record)

    s = sub.add_parser("sum"); s.add_argument("--scenario", required=True)
    s.add_argument("--server", required=True); s.add_argument("--parts", required=True)
    s.add_argument("--results", required=True); s.set_defaults(f=cmd_sum)

    s = sub.add_parser("report"); s.add_argument("results"); s.set_defaults(f=cmd_report)

    s = sub.add_parser("medians"); s.add_argument("--label", required=True)
    s.add_argument("--results", nargs="+", required=True); s.add_argument("--results-b", nargs="*")
    s.set_defaults(f=cmd_medians)

    s = sub.add_parser("rss-summary"); s.add_argument("csv")
    s.add_argument("--warmup", type=int, default=300)
    s.add_argument("--max-growth-pct", type=float, default=10); s.set_defaults(f=cmd_rss_summary)

    s = sub.add_parser("log-leaks"); s.add_argument("log")
    s.add_argument("--count", type=int, default=1000); s.add_argument("--prefix", default="KEY_")
    s.add_argument("--width", type=int, default=4)
    s.add_argument("--token", action="append", default=[]); s.set_defaults(f=cmd_log_leaks)

    a = p.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
