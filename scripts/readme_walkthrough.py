#!/usr/bin/env python3
"""Runs the walkthrough of README.md as a newcomer would, on a fresh data directory.

Every ```sh block between the walkthrough markers runs in one bash session, in order.
A ```json (or ```text) block right after a command block is the output README.md
promises: the real output must match it once ids, timestamps, digests and tokens are
masked.

    scripts/readme_walkthrough.py --check   # CI: fail on any difference
    scripts/readme_walkthrough.py --write   # refresh the printed outputs

`cargo run --release -q --` in the blocks is replaced by the binary given with
--binary (default target/debug/coffer), so CI needs no second, release build.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

START, END = "<!-- walkthrough:start -->", "<!-- walkthrough:end -->"
BLOCK = re.compile(r"```(sh|json|text)\n(.*?)```\n", re.S)
MASKS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"), "<time>"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "<hex64>"),
]
SEPARATOR = "__coffer_walkthrough_block__"


def mask(text):
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text.strip()


def blocks(readme):
    body = readme[readme.index(START) : readme.index(END)]
    return [(m.group(1), m.group(2), m.span()) for m in BLOCK.finditer(body)], readme.index(START)


def run(commands, binary):
    """Runs the command blocks in one shell; returns each block's output."""
    script = []
    for i, cmd in enumerate(commands):
        cmd = cmd.replace("cargo run --release -q --", binary)
        script.append(cmd)
        script.append(f"echo {SEPARATOR}{i}")
    with tempfile.TemporaryDirectory() as workdir:
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", "\n".join(script) + "\nkill %1 2>/dev/null; wait"],
            cwd=workdir, capture_output=True, text=True, timeout=300,
            env={**os.environ, "COFFER_LOG_LEVEL": "warn"},
        )
    if result.returncode != 0:
        sys.exit(f"walkthrough failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    outputs, rest = [], result.stdout
    for i in range(len(commands)):
        out, rest = rest.split(f"{SEPARATOR}{i}\n", 1)
        outputs.append(out)
    return outputs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--binary", default=os.path.abspath("target/debug/coffer"))
    parser.add_argument("--readme", default="README.md")
    args = parser.parse_args()
    readme = open(args.readme).read()
    found, offset = blocks(readme)
    commands = [code for kind, code, _ in found if kind == "sh"]
    outputs = run(commands, args.binary)
    failures, edits, n, checked = [], [], -1, 0
    for i, (kind, code, span) in enumerate(found):
        if kind == "sh":
            n += 1
            continue
        if n < 0 or found[i - 1][0] != "sh":
            continue
        actual = outputs[n]
        checked += 1
        if mask(actual) != mask(code):
            failures.append(f"--- block {n} printed:\n{actual}\n--- README says:\n{code}")
            # Only what differs is rewritten, so a refresh touches nothing else.
            edits.append((offset + span[0], offset + span[1], f"```{kind}\n{actual.rstrip()}\n```\n"))
    if args.write:
        for start, end, text in reversed(edits):
            readme = readme[:start] + text + readme[end:]
        open(args.readme, "w").write(readme)
        print(f"rewrote {len(edits)} outputs")
    elif failures:
        sys.exit("README walkthrough differs from what it prints:\n" + "\n".join(failures))
    else:
        print(f"README walkthrough: {len(commands)} command blocks ran, {checked} outputs match")


if __name__ == "__main__":
    main()
