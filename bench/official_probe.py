#!/usr/bin/env python3
"""Asks the Go module proxy for the official Go provider's newest release, from the wrapper
module `bench/official`, and prints one line for the report: why it cannot be measured, or that
it is served. Tries the machine's Go first and `GOTOOLCHAIN=go1.27.3` (the one approved newer
toolchain) only when the answer is that a newer Go is needed. URLs in the answer are shortened
to the module path (the report names no registry host)."""

import json
import os
import re
import shutil
import subprocess

MODULE = "github.com/fluxcd/terraform-provider-flux"
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "official")


def download(toolchain=None):
    env = dict(os.environ, GOFLAGS="-mod=mod")
    if toolchain:
        env["GOTOOLCHAIN"] = toolchain
    proc = subprocess.run(["go", "mod", "download", "-json", f"{MODULE}@latest"], cwd=HERE,
                          env=env, capture_output=True, text=True, timeout=300)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return {"Error": (proc.stdout + proc.stderr).strip() or f"exit {proc.returncode}"}


def main():
    if not shutil.which("go"):
        print("no Go toolchain on PATH")
        return
    answer = download()
    if "Error" in answer and re.search(r"requires go|toolchain", answer["Error"]):
        answer = download("go1.27.3")
    if "Error" in answer:
        error = re.sub(r"https?://\S+/(@v/\S+?):", r"<module proxy>/\1:", answer["Error"])
        error = " ".join(error.split())
        print(f"the Go module proxy refused it (`go mod download {MODULE}@latest`: {error})")
    else:
        print(f"{MODULE} {answer.get('Version')} is served, but building it is not automated "
              "(see bench/README.md)")


if __name__ == "__main__":
    main()
