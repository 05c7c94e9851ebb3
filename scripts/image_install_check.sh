#!/usr/bin/env bash
# Repeat the Dockerfile's builder install without a Docker engine, and check what it installs.
#
#   scripts/image_install_check.sh [--stage-only] [WORK_DIR]
#
# 1. Stages the build context as `docker build` would send it (.dockerignore applied, last match wins) in
#    WORK_DIR/context, and replays the Dockerfile's COPY instructions into WORK_DIR/rootfs, which stands in
#    for the image's filesystem (rootfs/src, rootfs/srv/models, ...).
# 2. Checks that every RUN in the Dockerfile is one this script knows (MIRRORED_RUNS below, replayed here,
#    or NOT_REPLAYED): a changed RUN fails here until this script is updated to match it.
# 3. Replays the builder's RUNs: `python3.11 -m venv rootfs/opt/venv`, then, in rootfs/src, exactly
#    `pip install --no-cache-dir .` (the package downloads its dependencies from PyPI), then the models chmod.
# 4. Fails if anything of the training stack (tensorflow*, tensorboard*, keras, tf-keras, tf2onnx) is in the
#    venv, if a serving dependency is missing, if `pip check` fails, or if the installed app does not import.
#
# --stage-only stops after step 2 (no install; a second or so). WORK_DIR must be new or empty; by default a
# new temporary folder, which is kept and printed. PYTHON picks the interpreter (default python3.11; the
# image's is the patch release in the Dockerfile's FROM, so a version difference there is expected).
# tests/test_container.py runs this, then starts the service from rootfs/opt/venv with the Dockerfile's ENV,
# runs its HEALTHCHECK and a real POST /forecast.
set -euo pipefail

# "WORKDIR$ command" of each RUN in the stages that build the image's contents, in order.
MIRRORED_RUNS='/src$ python -m venv /opt/venv
/src$ /opt/venv/bin/pip install --no-cache-dir .
/src$ chmod -R a=rX /srv/models'
# RUNs that change nothing this check looks at (the runtime user; tests/test_container.py checks USER).
NOT_REPLAYED='/$ groupadd --system --gid 10001 shelfcast && useradd --system --no-log-init --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin shelfcast'

stage_only=0
if [[ "${1:-}" == "--stage-only" ]]; then
    stage_only=1
    shift
fi
if [[ $# -gt 1 || "${1:-}" == -* ]]; then
    echo "usage: $0 [--stage-only] [WORK_DIR]" >&2
    exit 2
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3.11}"
if [[ $# -eq 1 ]]; then
    WORK="$1"
    mkdir -p "$WORK"
    if [[ -n "$(ls -A "$WORK")" ]]; then
        echo "error: $WORK is not empty" >&2
        exit 2
    fi
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/shelfcast-image.XXXXXX")"
fi
WORK="$(cd "$WORK" && pwd)"
ROOT="$WORK/rootfs"
VENV="$ROOT/opt/venv"

echo "== staging the build context and replaying the Dockerfile's COPYs into $ROOT"
MIRRORED_RUNS="$MIRRORED_RUNS" NOT_REPLAYED="$NOT_REPLAYED" "$PYTHON" - "$REPO" "$WORK" <<'PY'
"""Stage the context (.dockerignore as moby's patternmatcher reads it) and replay the COPY instructions."""

import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path, PurePosixPath

repo, work = Path(sys.argv[1]), Path(sys.argv[2])
context, rootfs = work / "context", work / "rootfs"


def fail(message):
    sys.exit(f"error: {message}")


def translate(pattern):
    """A cleaned .dockerignore pattern as a regex: * and ? stay inside one path segment, ** spans segments."""
    rx, i = "^", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*" and pattern[i + 1 : i + 2] == "*":
            i += 2
            if pattern[i : i + 1] == "/":
                i += 1
            rx += ".*" if i >= len(pattern) else "(.*/)?"
            continue
        if c == "\\" and i + 1 < len(pattern):
            rx, i = rx + re.escape(pattern[i + 1]), i + 2
            continue
        rx += {"*": "[^/]*", "?": "[^/]", "[": "[", "]": "]"}.get(c) or re.escape(c)
        i += 1
    return re.compile(rx + "$")


rules = []  # (negated, regex, cleaned pattern) in file order
ignore_file = repo / ".dockerignore"
for raw in ignore_file.read_text(encoding="utf-8").splitlines() if ignore_file.exists() else []:
    line = raw.strip()
    if not line or line.startswith("#"):
        continue
    negated = line.startswith("!")
    pattern = os.path.normpath(line[1:].strip() if negated else line).lstrip("/")
    rules.append((negated, translate(pattern), pattern))


def excluded(rel):
    """moby's MatchesOrParentMatches: a pattern applies to a path or any of its parents; the last match wins."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    result = False
    for negated, rx, _ in rules:
        if any(rx.match(p) for p in prefixes):
            result = not negated
    return result


def walk_into(rel_dir):
    """As docker's context walk: an excluded folder is skipped unless an exception pattern starts inside it."""
    if not excluded(rel_dir):
        return True
    return any(negated and (pattern + "/").startswith(rel_dir + "/") for negated, _, pattern in rules)


sent = 0
for dirpath, dirnames, filenames in os.walk(repo):
    rel_dir = os.path.relpath(dirpath, repo)
    rel_dir = "" if rel_dir == "." else rel_dir
    dirnames[:] = sorted(d for d in dirnames if walk_into(f"{rel_dir}/{d}" if rel_dir else d))
    for name in sorted(filenames):
        rel = f"{rel_dir}/{name}" if rel_dir else name
        if not excluded(rel):
            (context / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / rel, context / rel)
            sent += 1
print(f"   context: {sent} files in {context}")


def logical_lines(text):
    """(KEYWORD, arguments) per instruction: continuations joined, comment lines dropped (also inside them)."""
    out, buf = [], ""
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1].rstrip() + " "
            continue
        keyword, _, rest = (buf + s).partition(" ")
        out.append((keyword.upper(), " ".join(rest.split())))
        buf = ""
    return out


def inside(path):
    """The rootfs location of an absolute image path."""
    return rootfs / PurePosixPath(path).relative_to("/")


def copy_into(src, dest, dest_is_dir, mode):
    if src.is_dir():
        shutil.copytree(src, dest, dirs_exist_ok=True)
    else:
        target = dest / src.name if dest_is_dir or dest.is_dir() else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
        dest = target
    if mode is not None:
        for path in [dest, *dest.rglob("*")] if dest.is_dir() else [dest]:
            path.chmod(mode)


stages, workdir, runs = [], "/", []
mirrored = [line for line in os.environ["MIRRORED_RUNS"].splitlines() if line.strip()]
not_replayed = [line for line in os.environ["NOT_REPLAYED"].splitlines() if line.strip()]
for keyword, rest in logical_lines((repo / "Dockerfile").read_text(encoding="utf-8")):
    if keyword == "FROM":
        words = [w for w in rest.split() if not w.startswith("--")]
        base, name = words[0], words[2] if len(words) == 3 and words[1].lower() == "as" else None
        parent = next((s for s in stages if s["name"] == base), None)
        workdir = parent["workdir"] if parent else "/"
        stages.append({"name": name, "workdir": workdir})
    elif keyword == "WORKDIR":
        workdir = str(PurePosixPath(workdir, rest))
        stages[-1]["workdir"] = workdir
        inside(workdir).mkdir(parents=True, exist_ok=True)
    elif keyword == "RUN":
        runs.append(f"{workdir}$ {rest}")
    elif keyword in ("COPY", "ADD"):
        words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        flags = {w.split("=", 1)[0]: w.split("=", 1)[-1] for w in words if w.startswith("--")}
        args = [w for w in words if not w.startswith("--")]
        unknown = set(flags) - {"--from", "--chmod", "--chown", "--link"}
        if keyword == "ADD" or unknown or len(args) < 2:
            fail(f"this script cannot replay `{keyword} {rest}`; update scripts/image_install_check.sh")
        mode = int(flags["--chmod"], 8) if "--chmod" in flags else None
        *sources, dest_text = args
        dest_is_dir = dest_text.endswith("/") or len(sources) > 1
        dest = inside(PurePosixPath(workdir, dest_text))
        if "--from" in flags:
            if not any(s["name"] == flags["--from"] for s in stages):
                fail(f"`COPY {rest}` copies from an image, which cannot be replayed without Docker")
            for src_text in sources:
                src = inside(PurePosixPath("/", src_text))
                if src != dest:
                    copy_into(src, dest, dest_is_dir, mode)
            continue
        for src_text in sources:
            matches = sorted(context.glob(src_text)) if re.search(r"[*?\[]", src_text) else [context / src_text]
            if not matches or not all(m.exists() for m in matches):
                fail(f"`COPY {rest}`: {src_text} is not in the build context (is it in .dockerignore?)")
            for src in matches:
                copy_into(src, dest, dest_is_dir, mode)

unknown_runs = [r for r in runs if r not in mirrored and r not in not_replayed]
builder_runs = [r for r in runs if r in mirrored]
if unknown_runs or builder_runs != mirrored:
    fail(
        "the Dockerfile's RUN instructions are not the ones this script replays; update MIRRORED_RUNS and its "
        "replay in scripts/image_install_check.sh.\n  Dockerfile: "
        + "\n              ".join(runs)
        + "\n  mirrored:   "
        + "\n              ".join(mirrored)
    )
print(f"   {len(stages)} stages; RUNs replayed by this script: {len(mirrored)}")
PY

if [[ $stage_only -eq 1 ]]; then
    echo "== staged only: $WORK"
    exit 0
fi

# The replay of MIRRORED_RUNS, with image paths under $ROOT and the image's `python` as $PYTHON.
echo "== $PYTHON -m venv $VENV"
"$PYTHON" -m venv "$VENV"
echo "== (cd $ROOT/src && $VENV/bin/pip install --no-cache-dir .)"
(cd "$ROOT/src" && PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/pip" install --no-cache-dir .)
echo "== chmod -R a=rX $ROOT/srv/models"
chmod -R a=rX "$ROOT/srv/models"

echo "== checking the installed environment"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/pip" check
# -I: isolated, so neither the working directory nor PYTHONPATH can put the repo's app/ on sys.path.
(cd / && "$VENV/bin/python" -I - "$VENV") <<'PY'
import importlib.metadata
import re
import sys
from pathlib import Path

venv = Path(sys.argv[1]).resolve()
names = sorted({re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() for d in importlib.metadata.distributions()})
forbidden = [n for n in names if n.startswith(("tensorflow", "tensorboard")) or n in ("keras", "tf-keras", "tf2onnx")]
serving = ["shelfcast", "fastapi", "uvicorn", "pydantic", "pydantic-settings", "onnxruntime", "numpy"]
missing = [n for n in serving if n not in names]
print(f"   {len(names)} distributions: {' '.join(names)}")
if forbidden:
    sys.exit(f"error: the training stack is in the serving install: {', '.join(forbidden)}")
if missing:
    sys.exit(f"error: serving dependencies missing from the install: {', '.join(missing)}")

import app.main  # noqa: E402 - fastapi, onnxruntime and the app itself import from the installed venv

if venv not in Path(app.main.__file__).resolve().parents:
    sys.exit(f"error: imported {app.main.__file__}, not the venv's installed copy")
print("   no tensorflow/keras/tf2onnx; serving dependencies present; app imports from the venv")
PY

echo "== ok: $WORK (venv: $VENV, models: $ROOT/srv/models)"
