#!/usr/bin/env python3
"""The official Phase CLI (phase-cli 1.21.3) and Python SDK (phase-dev 2.1.2), unmodified,
against a live Coffer server. Every step's result is checked over Coffer's REST API too.

    python3 tests/phase_cli/check.py --coffer target/debug/coffer --phase-venv VENV

VENV holds both packages (`.ci/run` makes it). The script starts its own server on a
temporary data directory and a free loopback port, and exits non-zero at the first
check that does not hold. A missing CLI or SDK is a failure, never a skip.
"""

import argparse
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml  # PyYAML: a dependency of phase-cli, so the venv has it

CHECKS = 0


def check(condition, what):
    """Counts a check; stops the run with `what` when it does not hold."""
    global CHECKS
    CHECKS += 1
    if not condition:
        raise SystemExit(f"FAILED: {what}")


class Server:
    """`coffer serve` on a temporary data directory and a free loopback port."""

    def __init__(self, coffer, workdir):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.log = workdir / "serve.log"
        self.process = subprocess.Popen(
            [coffer, "serve", "--data-dir", str(workdir / "db"),
             "--bind", f"127.0.0.1:{port}", "--log-level", "warn"],
            stderr=self.log.open("w"),
        )
        for _ in range(200):
            text = self.log.read_text()
            if "Coffer listening on" in text:
                break
            check(self.process.poll() is None, f"the server exited:\n{text}")
            time.sleep(0.05)
        admin = [line.split(": ", 1)[1] for line in text.splitlines()
                 if line.startswith("Admin token: ")]
        check(len(admin) == 1, f"the server printed its admin token:\n{text}")
        self.admin = Rest(self.url, admin[0])

    def stop(self):
        self.process.terminate()
        check(self.process.wait(timeout=30) == 0, "the server stopped cleanly")


class Rest:
    """Coffer's REST API with one token."""

    def __init__(self, url, token):
        self.url, self.token = url, token

    def send(self, method, path, body=None):
        request = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer User {self.token}",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request) as answer:
                raw = answer.read()
                return answer.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def ok(self, method, path, body=None, status=200):
        got, answer = self.send(method, path, body)
        check(got == status, f"{method} {path} answered {got}: {answer}")
        return answer

    def audit(self):
        """The whole audit log, page after page."""
        entries, since = [], 0
        while since is not None:
            page = self.ok("GET", f"/v1/audit/?limit=1000&since={since}")
            entries += page["data"]
            since = page["next"]
        return entries

    def secrets(self, app_id, env):
        """Every live secret of an environment, by (path, key), as the REST API has it."""
        query = urllib.parse.urlencode({"app_id": app_id, "env": env, "resolve": "false"})
        listed = self.ok("GET", f"/v1/secrets/?{query}")
        return {(s["path"], s["key"]): s for s in listed}


class Cli:
    """The `phase` command with one token, as a user runs it."""

    def __init__(self, venv, server, phase_token, workdir):
        self.binary = str(Path(venv).resolve() / "bin" / "phase")
        self.workdir = workdir
        home = workdir / "home"
        home.mkdir(exist_ok=True)
        self.env = {"PATH": os.environ["PATH"], "HOME": str(home), "COLUMNS": "200",
                    "PHASE_SERVICE_TOKEN": phase_token, "PHASE_HOST": server.url}

    def run(self, *args, stdin=None):
        return subprocess.run([self.binary, *args], input=stdin, capture_output=True,
                              text=True, env=self.env, cwd=self.workdir, timeout=120)

    def ok(self, *args, stdin=None):
        done = self.run(*args, stdin=stdin)
        check(done.returncode == 0,
              f"phase {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
        return done.stdout


def value_of(secrets, key, path="/"):
    secret = secrets.get((path, key))
    check(secret is not None, f"REST has {path} {key}: {sorted(secrets)}")
    return secret["value"]


def cli_round(server, venv, workdir, kind):
    """Every CLI command a Phase user runs, with a `kind` ("service" or "user") token."""
    rest = server.admin
    app = rest.ok("POST", "/v1/apps/", {"name": f"cli-{kind}"}, status=201)
    app_id = app["id"]
    token_body = {"name": f"cli {kind}", "type": kind}
    if kind == "service":
        token_body |= {"appId": app_id, "environments": ["development", "production"]}
    created = rest.ok("POST", "/v1/tokens/", token_body, status=201)
    phase_token = created["phaseToken"]
    check(phase_token.startswith({"service": "pss_service:v2:", "user": "pss_user:v1:"}[kind]),
          "the phaseToken has the clients' prefix")
    cli = Cli(venv, server, phase_token, workdir)
    at = ("--app-id", app_id, "--env", "development")

    # create: the value on stdin, a random one, one at a path.
    cli.ok("secrets", "create", "DB_PASSWORD", *at, stdin="s3cr3t")
    cli.ok("secrets", "create", "API_TOKEN", "--random", "hex", "--length", "24", *at)
    cli.ok("secrets", "create", "REDIS_URL", "--path", "/backend", *at,
           stdin="redis://cache:6379")
    dev = rest.secrets(app_id, "development")
    check(value_of(dev, "DB_PASSWORD") == "s3cr3t", "create took the value from stdin")
    random_value = value_of(dev, "API_TOKEN")
    check(len(random_value) == 48 and all(c in "0123456789abcdef" for c in random_value),
          f"--random hex --length 24 made 24 random bytes in hex: {random_value!r}")
    check(value_of(dev, "REDIS_URL", "/backend") == "redis://cache:6379", "create --path")
    check(all(s["version"] == 1 for s in dev.values()), "every new secret is version 1")

    # One key per place, whichever route wrote it.
    duplicate = cli.run("secrets", "create", "DB_PASSWORD", *at, stdin="again")
    check(duplicate.returncode != 0 and "Duplicate secret found" in duplicate.stdout,
          f"a second DB_PASSWORD is refused: {duplicate.stdout}")
    got, answer = rest.send("POST", f"/v1/secrets/?app_id={app_id}&env=development",
                            {"secrets": [{"key": "DB_PASSWORD", "value": "rest"}]})
    check(got == 409, f"REST refuses the key the CLI wrote: {got} {answer}")
    check(rest.secrets(app_id, "development") == dev, "refused writes changed nothing")

    # list --show and get answer what REST has.
    listed = cli.ok("secrets", "list", "--show", *at)
    for key in ("DB_PASSWORD", "API_TOKEN"):
        check(key in listed and dev[("/", key)]["value"] in listed, f"list --show shows {key}")
    got_secret = json.loads(cli.ok("secrets", "get", "DB_PASSWORD", *at))
    check(got_secret["value"] == "s3cr3t" and got_secret["path"] == "/", f"get: {got_secret}")

    # update: the value (same id, next version), then the path.
    cli.ok("secrets", "update", "DB_PASSWORD", *at, stdin="n3w-s3cr3t")
    cli.ok("secrets", "update", "REDIS_URL", "--path", "/backend", "--updated-path", "/cache",
           *at, stdin="redis://cache:6380")
    after = rest.secrets(app_id, "development")
    updated = after[("/", "DB_PASSWORD")]
    check(updated["value"] == "n3w-s3cr3t" and updated["version"] == 2
          and updated["id"] == dev[("/", "DB_PASSWORD")]["id"], f"update: {updated}")
    moved = after.get(("/cache", "REDIS_URL"))
    check(moved is not None and ("/backend", "REDIS_URL") not in after
          and moved["id"] == dev[("/backend", "REDIS_URL")]["id"], f"--updated-path: {after}")

    # delete
    cli.ok("secrets", "delete", "API_TOKEN", *at)
    check(("/", "API_TOKEN") not in rest.secrets(app_id, "development"), "delete")

    # import a .env file
    env_file = workdir / f"{kind}.env"
    env_file.write_text("# settings\nLOG_LEVEL=debug\nGREETING=\"hello world\"\n"
                        "EMPTY=\nFEATURE_FLAGS=a,b\n")
    cli.ok("secrets", "import", str(env_file), *at)
    dev = rest.secrets(app_id, "development")
    for key, value in [("LOG_LEVEL", "debug"), ("GREETING", "hello world"),
                       ("FEATURE_FLAGS", "a,b")]:
        check(value_of(dev, key) == value, f"import wrote {key}={value!r}: {value_of(dev, key)!r}")

    # A reference to another environment, written over REST, resolved by the CLI.
    rest.ok("POST", f"/v1/secrets/?app_id={app_id}&env=production",
            {"secrets": [{"key": "DB_HOST", "value": "db.prod.internal"}]})
    cli.ok("secrets", "create", "DATABASE_URL", *at,
           stdin="postgres://${production.DB_HOST}/shop")

    # export in three formats: what REST has at /, references resolved.
    dev = rest.secrets(app_id, "development")
    expected = {key: s["value"] for (path, key), s in dev.items() if path == "/"}
    expected["DATABASE_URL"] = "postgres://db.prod.internal/shop"
    as_json = json.loads(cli.ok("secrets", "export", "--format", "json", *at))
    check(as_json == expected, f"export json: {as_json} != {expected}")
    as_yaml = yaml.safe_load(cli.ok("secrets", "export", "--format", "yaml", *at))
    check({k: "" if v is None else str(v) for k, v in as_yaml.items()} == expected,
          f"export yaml: {as_yaml}")
    as_dotenv = {}
    for line in cli.ok("secrets", "export", *at).splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            as_dotenv[key] = value.strip('"')
    check(as_dotenv == expected, f"export dotenv: {as_dotenv}")

    # run: secrets injected, the reference resolved, the exit code passed on.
    script = ('test "$DB_PASSWORD" = n3w-s3cr3t && '
              'test "$DATABASE_URL" = postgres://db.prod.internal/shop && exit 7')
    done = cli.run("run", *at, f"sh -c '{script}'")
    check(done.returncode == 7, f"run passed on exit 7: {done.returncode} {done.stdout}")
    done = cli.run("run", *at, "sh -c 'exit 0'")
    check(done.returncode == 0, f"run passed on exit 0: {done.returncode}")

    # The audit log names what the CLI did as it names the REST route's writes.
    actions = {e["action"] for e in rest.audit() if e["actor"]["tokenId"] == created["id"]}
    check(actions == {"secret.read", "secret.create", "secret.update", "secret.delete"},
          f"the audit log names the CLI's actions: {actions}")
    return app_id


def read_only_round(server, venv, workdir, app_id):
    """A read-only token reads; its writes are refused and change nothing."""
    rest = server.admin
    phase_token = rest.ok("POST", "/v1/tokens/",
                          {"name": "read only", "type": "service", "appId": app_id,
                           "environments": ["development"], "permissions": ["read"]},
                          status=201)["phaseToken"]
    cli = Cli(venv, server, phase_token, workdir)
    at = ("--app-id", app_id, "--env", "development")
    before = rest.secrets(app_id, "development")
    audit_before = rest.audit()
    env_file = workdir / "readonly.env"
    env_file.write_text("SNEAKY=1\n")
    for args, stdin in [(("secrets", "create", "SNEAKY"), "x"),
                        (("secrets", "update", "DB_PASSWORD"), "x"),
                        (("secrets", "delete", "DB_PASSWORD"), None),
                        (("secrets", "import", str(env_file)), None)]:
        done = cli.run(*args, *at, stdin=stdin)
        check(done.returncode != 0 and "Not authorized" in done.stdout + done.stderr,
              f"phase {' '.join(args)} with a read-only token is refused: {done.stdout}")
    check(rest.secrets(app_id, "development") == before, "refused writes changed nothing")
    writes = [e for e in rest.audit()[len(audit_before):]
              if e["action"] != "secret.read"]
    check(writes == [], f"refused writes left no audit entry of a write: {writes}")
    shown = json.loads(cli.ok("secrets", "get", "DB_PASSWORD", *at))
    check(shown["value"] == before[("/", "DB_PASSWORD")]["value"], "a read-only token reads")


def sdk_round(server, workdir):
    """The Python SDK's create, get, get-all, update and delete."""
    from phase import (CreateSecretsOptions, DeleteSecretOptions, GetAllSecretsOptions,
                       GetSecretOptions, Phase, UpdateSecretOptions)

    rest = server.admin
    app_id = rest.ok("POST", "/v1/apps/", {"name": "sdk"}, status=201)["id"]
    phase_token = rest.ok("POST", "/v1/tokens/",
                          {"name": "sdk", "type": "service", "appId": app_id,
                           "environments": ["development"]}, status=201)["phaseToken"]
    phase = Phase(init=False, pss=phase_token, host=server.url)
    where = {"env_name": "Development", "app_id": app_id}

    answer = phase.create_secrets(CreateSecretsOptions(
        **where, key_value_pairs=[{"STRIPE_KEY": "sk_test_1"}, {"SMTP_HOST": "mail"}]))
    check(answer == "Success", f"SDK create: {answer}")
    dev = rest.secrets(app_id, "development")
    check(value_of(dev, "STRIPE_KEY") == "sk_test_1" and value_of(dev, "SMTP_HOST") == "mail",
          "SDK create is seen over REST")

    one = phase.get_secret(GetSecretOptions(**where, key_to_find="STRIPE_KEY"))
    check(one is not None and one.value == "sk_test_1", f"SDK get: {one}")
    every = phase.get_all_secrets(GetAllSecretsOptions(**where))
    check(sorted((s.key, s.value) for s in every)
          == [("SMTP_HOST", "mail"), ("STRIPE_KEY", "sk_test_1")], f"SDK get-all: {every}")

    outcome = phase.update_secret(UpdateSecretOptions(**where, key="STRIPE_KEY",
                                                      value="sk_test_2"))
    check(outcome == "Success", f"SDK update: {outcome}")
    updated = rest.secrets(app_id, "development")[("/", "STRIPE_KEY")]
    check(updated["value"] == "sk_test_2" and updated["version"] == 2
          and updated["id"] == dev[("/", "STRIPE_KEY")]["id"], f"SDK update over REST: {updated}")

    outcome = phase.delete_secret(DeleteSecretOptions(**where, key_to_delete="SMTP_HOST"))
    check(outcome == [], f"SDK delete found the key: {outcome}")
    check(sorted(rest.secrets(app_id, "development")) == [("/", "STRIPE_KEY")],
          "SDK delete is seen over REST")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coffer", required=True, help="the coffer binary")
    parser.add_argument("--phase-venv", required=True,
                        help="a venv with phase-cli==1.21.3 and phase-dev==2.1.2")
    args = parser.parse_args()
    check(Path(args.phase_venv, "bin", "phase").exists(), "the venv has the phase CLI")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server = Server(args.coffer, workdir)
        try:
            service_app = cli_round(server, args.phase_venv, workdir, "service")
            print("phase CLI with a service token: ok")
            cli_round(server, args.phase_venv, workdir, "user")
            print("phase CLI with a user token: ok")
            read_only_round(server, args.phase_venv, workdir, service_app)
            print("phase CLI with a read-only token: ok")
            sdk_round(server, workdir)
            print("phase SDK: ok")
        finally:
            log = server.log.read_text()
            server.stop()
        check("s3cr3t" not in log and "sk_test" not in log, "no value reached the server log")
    print(f"{CHECKS} checks passed")


if __name__ == "__main__":
    main()
