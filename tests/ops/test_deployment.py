"""What the container, the compose file and the Kubernetes manifests run, run for real.

The commands are taken from the files themselves (Dockerfile ``CMD`` and ``HEALTHCHECK``, the
compose ``migrate`` service), so the tests break when the files and the product drift apart.
Start-up refuses an out-of-date schema and wrong settings with one line each.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml
from dotenv import dotenv_values

from bot.config import Settings
from bot.store.db import make_engine, schema_status
from tests.ops.conftest import (
    CONTRACT,
    REPO,
    child_env,
    free_port,
    run_cli,
    serve_env,
    upgrade_url,
)

DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
K8S = REPO / "deploy" / "kubernetes" / "dora-bot.yaml"
ENV_EXAMPLE = REPO / ".env.example"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        logical.append(current.strip())
        current = ""
    out = []
    for item in logical:
        word, _, rest = item.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def dockerfile_cmd() -> list[str]:
    cmds = [args for word, args in dockerfile_instructions() if word == "CMD"]
    assert cmds, "the Dockerfile has no CMD"
    return json.loads(cmds[-1])  # exec form


def healthcheck_command() -> str:
    checks = [args for word, args in dockerfile_instructions() if word == "HEALTHCHECK"]
    assert len(checks) == 1, checks
    _, sep, command = checks[0].partition(" CMD ")
    assert sep, checks[0]
    return command.strip()  # shell form: run by /bin/sh -c


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def k8s_documents() -> list[dict]:
    return [d for d in yaml.safe_load_all(K8S.read_text()) if d]


def stderr_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


# --- migrate, then serve -------------------------------------------------------------------------

def test_db_upgrade_on_an_empty_database_then_serve_starts_and_the_healthcheck_passes(backend, make_database, serve, fake_slack, tmp_path):
    url = make_database(backend)
    migrate = compose()["services"]["migrate"]["command"]
    assert migrate == ["dora-bot", "db", "upgrade"]
    result = run_cli(migrate[1:], env=child_env(DATABASE_URL=url), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Upgraded" in result.stdout and "from empty" in result.stdout, result.stdout
    again = run_cli(migrate[1:], env=child_env(DATABASE_URL=url), cwd=tmp_path)
    assert again.returncode == 0 and "up to date" in again.stdout, again  # idempotent: a rerun of the Job is fine

    cmd = dockerfile_cmd()
    assert cmd == ["dora-bot", "serve"]
    fake_slack.token = "xoxb-4242-ops-bot-token-Zq7Vr2Lm9Kd"
    env = serve_env(url, fake_slack, HOST="0.0.0.0")  # the image's HOST
    proc = serve(env, args=tuple(cmd[1:])).wait_healthy()
    assert proc.get("/healthz").json() == {"status": "ok"}
    ready = proc.get("/readyz")
    assert ready.status == 200, ready

    probe = subprocess.run(["/bin/sh", "-c", healthcheck_command()], env=child_env(PORT=str(proc.port)),
                           capture_output=True, text=True, timeout=20)
    assert probe.returncode == 0, probe.stderr


def test_the_healthcheck_fails_when_nothing_answers(tmp_path):
    probe = subprocess.run(["/bin/sh", "-c", healthcheck_command()], env=child_env(PORT=str(free_port())),
                           capture_output=True, text=True, timeout=20, cwd=tmp_path)
    assert probe.returncode == 1


@pytest.mark.parametrize("state", ["empty", "0001"])
def test_serve_refuses_an_out_of_date_schema_with_one_line_naming_db_upgrade(state, make_database, fake_slack, tmp_path):
    url = make_database("sqlite")
    if state != "empty":
        upgrade_url(url, state)
    result = run_cli(["serve"], env=serve_env(url, fake_slack, LOG_FORMAT="json"), cwd=tmp_path, timeout=30)
    assert result.returncode != 0
    lines = stderr_lines(result)
    assert len(lines) == 1, lines
    assert "dora-bot db upgrade" in lines[0], lines
    assert (state in lines[0]) if state != "empty" else ("empty" in lines[0]), lines
    engine = make_engine(url)
    try:
        assert schema_status(engine)[0] is False  # nothing was changed behind the operator's back
    finally:
        engine.dispose()


def test_serve_migrate_upgrades_and_starts(backend, make_database, serve, fake_slack):
    url = make_database(backend)
    upgrade_url(url, "0002")
    fake_slack.token = "xoxb-4242-ops-bot-token-Zq7Vr2Lm9Kd"
    proc = serve(serve_env(url, fake_slack), args=("serve", "--migrate")).wait_healthy()
    ready = proc.get("/readyz")
    assert ready.status == 200, ready
    engine = make_engine(url)
    try:
        assert schema_status(engine)[0] is True
    finally:
        engine.dispose()


# --- wrong settings stop start-up ---------------------------------------------------------------

@pytest.mark.parametrize("variable, overrides", [
    ("SLACK_BOT_TOKEN", {"SLACK_BOT_TOKEN": None}),
    ("DORA_TIMEZONE", {"DORA_TIMEZONE": "Mars/Base"}),
    ("PORT", {"PORT": "http"}),
    ("PORT", {"PORT": "70000"}),
])
def test_a_wrong_setting_stops_serve_with_one_line_naming_the_variable(variable, overrides, make_database, fake_slack, tmp_path):
    url = make_database("sqlite")
    upgrade_url(url)
    result = run_cli(["serve"], env=serve_env(url, fake_slack, **overrides), cwd=tmp_path, timeout=30)
    assert result.returncode != 0
    lines = stderr_lines(result)
    assert len(lines) == 1, lines
    assert variable in lines[0] and "configuration error" in lines[0], lines
    assert result.stdout == ""


@pytest.mark.parametrize("command", [["serve"], ["db", "upgrade"]], ids=["serve", "db-upgrade"])
def test_an_unreachable_database_stops_start_up_with_one_line_and_no_password(command, fake_slack, tmp_path):
    """A wrong host or a database that is down is the most common start-up failure of a pod: the
    operator (and a JSON log pipeline) gets one line saying so, not a traceback, and never the password."""
    url = f"postgresql+psycopg://dora:pw-ops-secret-123@127.0.0.1:{free_port()}/dora"
    result = run_cli(command, env=serve_env(url, fake_slack, LOG_FORMAT="json"), cwd=tmp_path, timeout=30)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "pw-ops-secret-123" not in output
    lines = stderr_lines(result)
    assert "Traceback" not in output and len(lines) == 1, (
        f"{len(lines)} lines, starting with:\n" + "\n".join(lines[:3] + ["..."] + lines[-3:])
    )
    assert "database" in lines[0].lower() or "DATABASE_URL" in lines[0], lines


def test_db_upgrade_never_prints_the_database_password(make_database, tmp_path):
    from sqlalchemy.engine import make_url

    url = make_url(make_database("postgresql")).set(password="pw-ops-secret-456")  # trust auth ignores it
    result = run_cli(["db", "upgrade"], env=child_env(DATABASE_URL=url.render_as_string(hide_password=False)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Upgraded" in result.stdout
    assert "pw-ops-secret-456" not in result.stdout + result.stderr


# --- the settings contract: .env.example ----------------------------------------------------------

def env_example_paragraphs() -> list[list[str]]:
    paragraphs, current = [], []
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return paragraphs


ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=")


def test_env_example_lists_every_variable_of_the_contract_each_with_a_comment():
    documented: dict[str, bool] = {}
    for paragraph in env_example_paragraphs():
        seen_comment = False
        for line in paragraph:
            if line.startswith("#"):
                seen_comment = True
                continue
            match = ASSIGNMENT.match(line)
            assert match, f".env.example: not a comment or an assignment: {line!r}"
            name = match.group(1)
            assert name not in documented, f"{name} is set twice"
            documented[name] = seen_comment
    assert set(documented) == set(CONTRACT), (set(CONTRACT) - set(documented), set(documented) - set(CONTRACT))
    uncommented = [name for name, has_comment in documented.items() if not has_comment]
    assert not uncommented, f"no comment for {uncommented}"


def test_every_variable_settings_reads_is_in_the_contract():
    source = (REPO / "bot" / "config.py").read_text()
    read = set(re.findall(r'get\("([A-Z_]+)"\)', source)) | set(re.findall(r'\("([A-Z_]+)", "[a-z_]+"\)', source))
    assert read == set(CONTRACT), (read - set(CONTRACT), set(CONTRACT) - read)


def test_env_example_defaults_load_and_equal_the_built_in_defaults():
    values = dotenv_values(ENV_EXAMPLE)
    assert set(values) == set(CONTRACT)
    settings = Settings.from_env({k: v or "" for k, v in values.items()})
    assert settings == Settings(), "the defaults written in .env.example differ from the code's"


def test_env_example_works_as_the_dotenv_file_of_a_command(tmp_path):
    """Copied to .env (the README's instruction), it is read by the CLI and accepted as is."""
    (tmp_path / ".env").write_text(ENV_EXAMPLE.read_text().replace("sqlite:///dora-bot.db", f"sqlite:///{tmp_path / 'x.db'}"))
    result = run_cli(["db", "upgrade"], env=child_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "x.db") in result.stdout


# --- compose and Kubernetes ----------------------------------------------------------------------

def test_compose_file_parses_migrates_first_and_gives_the_drain_time():
    doc = compose()
    services = doc["services"]
    assert {"db", "migrate", "bot"} <= set(services)
    bot, migrate = services["bot"], services["migrate"]
    assert bot["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert bot["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert bot["environment"]["DATABASE_URL"] == migrate["environment"]["DATABASE_URL"]
    assert "command" not in bot or bot["command"] == dockerfile_cmd()
    assert any(str(p).endswith(":3000") for p in bot["ports"])
    grace = int(str(bot["stop_grace_period"]).rstrip("s"))
    assert grace > 25, "compose must wait longer than serve's 25 s drain before SIGKILL"
    Settings.from_env({"DATABASE_URL": bot["environment"]["DATABASE_URL"]})  # a URL the settings accept


def test_kubernetes_manifests_parse_with_probes_on_healthz_and_readyz():
    docs = k8s_documents()
    kinds = {d["kind"]: d for d in docs}
    assert {"ConfigMap", "Job", "Deployment", "Service"} <= set(kinds)
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 3000}
    liveness, readiness = container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]
    assert liveness["path"] == "/healthz" and readiness["path"] == "/readyz"
    assert liveness["port"] in ("http", 3000) and readiness["port"] in ("http", 3000)
    assert pod["terminationGracePeriodSeconds"] > 25
    assert container.get("args", container.get("command")) == dockerfile_cmd()
    annotations = kinds["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics" and annotations["prometheus.io/port"] == "3000"
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user
    job = kinds["Job"]["spec"]["template"]["spec"]["containers"][0]
    assert job["command"] == ["dora-bot", "db", "upgrade"]
    assert kinds["Service"]["spec"]["selector"] == kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    # The ConfigMap's values are valid settings.
    Settings.from_env(kinds["ConfigMap"]["data"])


def test_the_dockerfile_runs_serve_as_a_non_root_user_with_a_healthcheck():
    instructions = dockerfile_instructions()
    words = [w for w, _ in instructions]
    assert words.count("FROM") == 2, "multi-stage build"
    users = [args for w, args in instructions if w == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert "useradd" in " ".join(args for w, args in instructions if w == "RUN") and "10001" in " ".join(a for w, a in instructions)
    env = " ".join(args for w, args in instructions if w == "ENV")
    assert "PORT=3000" in env and "HOST=0.0.0.0" in env
    assert "/healthz" in healthcheck_command()
    assert "EXPOSE" in words and dict(instructions)["EXPOSE"] == "3000"


def test_the_build_context_of_the_image_holds_every_package_and_data_file():
    """The image installs from ``pyproject.toml``, ``README.md`` and ``bot/`` only: every package
    has an ``__init__.py`` (found by ``packages.find``) and every data file is declared."""
    sources = {src.rstrip("/") for w, args in dockerfile_instructions() if w == "COPY" and "--from" not in args
               for src in args.split()[:-1]}
    assert {"pyproject.toml", "README.md", "bot"} <= sources, sources  # README.md: the package's readme
    for directory in [p for p in (REPO / "bot").rglob("*") if p.is_dir() and p.name != "__pycache__"]:
        if any(directory.glob("*.py")):
            assert (directory / "__init__.py").exists(), f"{directory.relative_to(REPO)} would be left out of the image"
    data_files = [p for p in (REPO / "bot").rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")]
    pyproject = (REPO / "pyproject.toml").read_text()
    for path in data_files:
        assert path.name in pyproject, f"{path.relative_to(REPO)} is not in [tool.setuptools.package-data]"
