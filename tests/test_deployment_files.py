"""The deployment files agree with each other, with the app and with the README.

No Docker engine runs here or in CI, so nothing is built or started: these tests read
Dockerfile, compose.yaml, deploy/nginx.conf and .dockerignore, and check what a broken build
or a compose file that cannot start would get wrong. That uv.lock is current is
tests/test_install.py's to check.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PROFILES = {"monolith", "microservices", "scaled", "observability"}
# Each ticketsys subcommand and the port it serves on by default (README "Configuration").
SERVICE_PORTS = {"monolith": 8000, "vacancy": 8001, "ticket": 8002}


# --- readers ------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _defaults(value: Any) -> str:
    """A compose value with ``${VAR:-default}`` replaced by its default and ``$$`` by ``$``."""
    text = str(value)
    text = re.sub(r"(?<!\$)\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", text)
    return text.replace("$$", "$")


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: _defaults(value) for key, value in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", _dockerfile_cmd())
    return shlex.split(command) if isinstance(command, str) else list(command)


def _ports(service: dict[str, Any]) -> list[tuple[int, int]]:
    """``(host, container)`` pairs of the ports a service publishes."""
    published = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            published.append((int(port["published"]), int(port["target"])))
        else:
            *_, host, container = str(port).split(":")
            published.append((int(host), int(container.split("/")[0])))
    return published


def _is_ticketsys(service: dict[str, Any]) -> bool:
    return "build" in service or str(service.get("image", "")).startswith("ticketsys")


def _ticketsys_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in _services().items() if _is_ticketsys(svc)}


def _in_profile(profile: str) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in _services().items() if profile in svc.get("profiles", [])}


def _role(service: dict[str, Any]) -> str:
    """Which ticketsys subcommand a service runs: monolith, vacancy or ticket."""
    return _command(service)[0]


def _dockerfile() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` for every instruction, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    return instructions


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _dockerfile():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _final_stage() -> list[tuple[str, str]]:
    return _stages()[-1]


def _dockerfile_env() -> dict[str, str]:
    env = {}
    for keyword, args in _final_stage():
        if keyword == "ENV":
            for word in shlex.split(args):
                key, _, value = word.partition("=")
                env[key] = value
    return env


def _exec_form(keyword: str) -> list[str]:
    found = [args for kw, args in _final_stage() if kw == keyword]
    assert found, f"Dockerfile's final stage has no {keyword}"
    value = json.loads(found[-1])  # exec form: a JSON array
    assert isinstance(value, list)
    return value


def _dockerfile_cmd() -> list[str]:
    return _exec_form("CMD")


def _readme() -> str:
    return (ROOT / "README.md").read_text()


def _readme_docker_section() -> str:
    match = re.search(r"^## Docker\n(.*?)(?=^## )", _readme(), re.S | re.M)
    assert match, "README.md has no '## Docker' section"
    return match.group(1)


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _nginx_conf() -> str:
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


# --- compose.yaml ---------------------------------------------------------------------------


def test_compose_has_the_three_profiles_and_every_service_belongs_to_one() -> None:
    services = _services()
    seen = set()
    for name, svc in services.items():
        profiles = svc.get("profiles")
        assert profiles, f"{name} has no profile: it would start with every profile"
        assert set(profiles) <= PROFILES, f"{name}: unknown profiles {profiles}"
        seen.update(profiles)
    assert seen == PROFILES


def test_profiles_hold_the_documented_services() -> None:
    roles = {p: sorted(_role(s) for s in _in_profile(p).values() if _is_ticketsys(s)) for p in PROFILES}
    assert roles["monolith"] == ["monolith"]
    assert roles["microservices"] == ["ticket", "vacancy"]
    assert roles["scaled"] == ["ticket", "ticket", "vacancy", "vacancy"]
    assert {"redis", "nginx"} <= set(_in_profile("scaled"))


def test_every_command_is_a_ticketsys_subcommand_with_its_port() -> None:
    for name, svc in _ticketsys_services().items():
        assert _role(svc) in SERVICE_PORTS, f"{name} runs {_command(svc)}"


def test_only_monolith_and_microservices_publish_8000_to_8002_and_scaled_only_8080() -> None:
    published = {name: _ports(svc) for name, svc in _services().items()}
    assert published["monolith"] == [(8000, 8000)]
    assert published["vacancy"] == [(8001, 8001)]
    assert published["ticket"] == [(8002, 8002)]
    scaled = {name: published[name] for name in _in_profile("scaled")}
    assert [port for ports in scaled.values() for port in ports] == [(8080, 8080)]
    assert scaled["nginx"] == [(8080, 8080)]


def test_published_ports_are_the_ones_the_services_listen_on() -> None:
    for name, svc in _ticketsys_services().items():
        for _, container in _ports(svc):
            assert container == SERVICE_PORTS[_role(svc)], name


def test_host_is_0000_in_every_ticketsys_container() -> None:
    image_host = _dockerfile_env().get("HOST")
    for name, svc in _ticketsys_services().items():
        assert _env(svc).get("HOST", image_host) == "0.0.0.0", name


def test_initial_stock_is_10000_in_every_ticketsys_service() -> None:
    for profile in ("monolith", "microservices", "scaled"):
        for name, svc in _in_profile(profile).items():
            if _is_ticketsys(svc):
                assert _env(svc).get("INITIAL_STOCK") == "10000", name


def test_ticket_finds_the_vacancy_container_and_waits_for_it_healthy() -> None:
    services = _services()
    ticket = services["ticket"]
    assert _env(ticket)["VACANCY_URL"] == "http://vacancy:8001"
    assert _role(services["vacancy"]) == "vacancy"
    assert ticket["depends_on"]["vacancy"]["condition"] == "service_healthy"


def test_every_dependency_is_healthy_has_a_healthcheck_and_shares_a_profile() -> None:
    services = _services()
    for name, svc in services.items():
        depends = svc.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must state conditions"
        for other, rule in depends.items():
            assert rule["condition"] == "service_healthy", f"{name} -> {other}"
            assert "test" in services[other].get("healthcheck", {}), f"{other} has no healthcheck"
            shared = set(svc["profiles"]) & set(services[other]["profiles"])
            assert shared, f"{name} depends on {other}, which no profile of {name} starts"


def test_ticketsys_healthchecks_ask_healthz_on_the_service_port() -> None:
    for name, svc in _ticketsys_services().items():
        check = svc["healthcheck"]
        assert not check.get("disable"), name
        test = " ".join(_defaults(part) for part in check["test"])
        assert "/healthz" in test, name
        port = str(SERVICE_PORTS[_role(svc)])
        if "HEALTH_PORT" in test:
            assert _env(svc).get("HEALTH_PORT") == port, f"{name}: HEALTH_PORT"
        else:
            assert f":{port}/healthz" in test, name


def test_redis_and_nginx_have_healthchecks() -> None:
    services = _services()
    assert "redis-cli" in services["redis"]["healthcheck"]["test"]
    assert "ping" in services["redis"]["healthcheck"]["test"]
    assert "test" in services["nginx"]["healthcheck"]


def test_nofile_ulimit_is_high_for_every_ticketsys_service() -> None:
    for name, svc in _ticketsys_services().items():
        nofile = svc["ulimits"]["nofile"]
        limits = [nofile] if isinstance(nofile, int) else [nofile["soft"], nofile["hard"]]
        assert all(int(limit) >= 65536 for limit in limits), name


def test_journal_services_keep_data_dir_on_a_volume_of_their_own() -> None:
    data_dir = _dockerfile_env()["DATA_DIR"]
    named = set(_compose().get("volumes") or {})
    sources = []
    for name, svc in _ticketsys_services().items():
        if _env(svc).get("STOCK_STORE", "journal") != "journal":
            continue
        mounts = [str(v).split(":") for v in svc.get("volumes", [])]
        mine = [source for source, target, *_ in mounts if target == data_dir]
        assert mine, f"{name} keeps its journal in the container layer"
        assert mine[0] in named, f"{name}: {mine[0]} is not a named volume"
        sources.append(mine[0])
    assert len(sources) == len(set(sources)), "two journal services share one DATA_DIR"


def test_vacancy_and_ticket_share_a_long_service_token() -> None:
    for profile in ("microservices", "scaled"):
        tokens = {
            _env(svc).get("SERVICE_TOKEN") for svc in _in_profile(profile).values() if _is_ticketsys(svc)
        }
        assert len(tokens) == 1, f"{profile}: vacancy and ticket hold different tokens {tokens}"
        token = tokens.pop()
        assert token and len(token) >= 16, f"{profile}: SERVICE_TOKEN must be at least 16 characters"


def test_scaled_services_share_the_redis_store() -> None:
    scaled = _in_profile("scaled")
    redis = scaled["redis"]
    assert str(redis["image"]).startswith("redis:7")
    command = " ".join(_command(redis))
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    for name, svc in scaled.items():
        if _is_ticketsys(svc):
            store = urlsplit(_env(svc).get("STOCK_STORE", ""))
            assert store.scheme == "redis", f"{name} does not use Redis"
            assert store.hostname in scaled and store.port == 6379, name


def test_scaled_tickets_name_every_vacancy_replica() -> None:
    scaled = _in_profile("scaled")
    vacancies = {name for name, svc in scaled.items() if _is_ticketsys(svc) and _role(svc) == "vacancy"}
    tickets = {name: svc for name, svc in scaled.items() if _is_ticketsys(svc) and _role(svc) == "ticket"}
    assert len(vacancies) >= 2 and len(tickets) >= 2
    for name, svc in tickets.items():
        urls = [urlsplit(url.strip()) for url in _env(svc)["VACANCY_URL"].split(",")]
        assert {url.hostname for url in urls} == vacancies, name
        assert {url.port for url in urls} == {SERVICE_PORTS["vacancy"]}, name
        assert set(svc["depends_on"]) == vacancies, name


def test_nginx_fronts_every_scaled_ticket_with_the_repo_config() -> None:
    scaled = _in_profile("scaled")
    nginx = scaled["nginx"]
    assert str(nginx["image"]).startswith("nginx:")
    mounts = [str(v).split(":") for v in nginx["volumes"]]
    assert ["./deploy/nginx.conf", "/etc/nginx/nginx.conf", "ro"] in mounts
    tickets = {name for name, svc in scaled.items() if _is_ticketsys(svc) and _role(svc) == "ticket"}
    upstream = set(re.findall(r"^\s*server\s+([\w.-]+):(\d+)", _nginx_conf(), re.M))
    assert upstream == {(name, str(SERVICE_PORTS["ticket"])) for name in tickets}
    assert set(nginx["depends_on"]) == tickets


def test_compose_builds_this_repository() -> None:
    for name, svc in _ticketsys_services().items():
        build = svc["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        assert (ROOT / context / "Dockerfile").is_file(), name


# --- deploy/nginx.conf ----------------------------------------------------------------------


def test_nginx_keeps_connections_to_tickets_alive() -> None:
    conf = _nginx_conf()
    assert re.search(r"^\s*keepalive\s+\d+;", conf, re.M)
    assert re.search(r"^\s*proxy_http_version\s+1\.1;", conf, re.M)
    assert re.search(r'^\s*proxy_set_header\s+Connection\s+"";', conf, re.M)


def test_nginx_listens_where_compose_publishes() -> None:
    listens = re.findall(r"^\s*listen\s+(?:[\d.]+:)?(\d+)", _nginx_conf(), re.M)
    assert listens == [str(target) for _, target in _ports(_services()["nginx"])]


def test_nginx_never_resends_a_purchase_and_passes_ticket_errors_through() -> None:
    conf = _nginx_conf()
    retry = re.findall(r"^\s*proxy_next_upstream\s+([^;]*);", conf, re.M)
    assert retry and "non_idempotent" not in " ".join(retry)
    assert not re.search(r"^\s*proxy_intercept_errors\s+on;", conf, re.M)


# --- Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_runs_on_python_311_slim() -> None:
    bases = [args.split()[0] for keyword, args in _dockerfile() if keyword == "FROM"]
    assert _final_stage()[0][1].split()[0] == "python:3.11-slim"
    assert "python:3.11-slim" in bases


def test_dockerfile_takes_uv_from_a_pinned_image_and_installs_from_the_frozen_lock() -> None:
    instructions = _dockerfile()
    uv_images = [
        word
        for _, args in instructions
        for word in args.split()
        if word.startswith("ghcr.io/astral-sh/uv") or word.startswith("--from=ghcr.io/astral-sh/uv")
    ]
    assert uv_images, "uv does not come from ghcr.io/astral-sh/uv"
    for image in uv_images:
        assert re.search(r":\d+\.\d+\.\d+", image), f"{image} is not pinned to a version"
    syncs = [args for keyword, args in instructions if keyword == "RUN" and "uv sync" in args]
    assert syncs and all("--frozen" in args for args in syncs)
    assert "--no-install-project" in syncs[0], "dependencies are not a layer of their own"
    # The image serves with the embedded server: the runtime dependencies, no extras.
    assert not any("--extra" in args or "--all-extras" in args for args in syncs)
    copies = [args for keyword, args in instructions if keyword == "COPY"]
    assert any("uv.lock" in args for args in copies)


def test_dockerfile_copies_only_files_that_exist_and_are_not_ignored() -> None:
    ignored = {
        line.strip().strip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for keyword, args in _dockerfile():
        if keyword != "COPY" or "--from=" in args:
            continue
        *sources, _ = [word for word in args.split() if not word.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert source.strip("/") not in ignored, f"COPY {source}: excluded by .dockerignore"


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "data", ".env", "benchmarks/results"} <= ignored


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [args for keyword, args in _final_stage() if keyword == "USER"]
    assert users, "the final stage has no USER: it runs as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_dockerfile_environment_volume_ports_and_signal() -> None:
    env = _dockerfile_env()
    assert env["HOST"] == "0.0.0.0"
    assert env["DATA_DIR"] == "/data"
    assert env["PATH"].startswith("/app/.venv/bin:")
    stage = dict(_final_stage())
    assert stage["VOLUME"] in {"/data", '["/data"]'}
    assert set(stage["EXPOSE"].split()) == {str(port) for port in SERVICE_PORTS.values()}
    assert stage["STOPSIGNAL"] == "SIGTERM"


def test_dockerfile_healthcheck_asks_healthz() -> None:
    checks = [args for keyword, args in _final_stage() if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "/healthz" in checks[0]
    # Shell form, so that HEALTH_PORT set by compose is read when the check runs.
    assert re.search(r"\bCMD\s+(?!\[)", checks[0]) and "${HEALTH_PORT:-8000}" in checks[0]


def test_image_command_is_the_one_the_readme_documents() -> None:
    command = _exec_form("ENTRYPOINT") + _exec_form("CMD")
    assert command == ["ticketsys", "monolith"]
    assert f"`{' '.join(command)}`" in _readme_docker_section()
    assert _pyproject()["project"]["scripts"]["ticketsys"] == "ticketsys.cli:main"


@pytest.mark.parametrize("role", sorted(SERVICE_PORTS))
def test_the_containers_commands_are_accepted_by_ticketsys(role: str) -> None:
    commands = {tuple(_exec_form("CMD"))} | {tuple(_command(s)) for s in _ticketsys_services().values()}
    assert (role,) in commands
    done = subprocess.run(
        [sys.executable, "-m", "ticketsys", role, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"ticketsys {role}" in done.stdout


# --- README.md ------------------------------------------------------------------------------


def test_readme_profiles_exist_in_compose() -> None:
    named = re.findall(r"docker compose\b[^\n`]*?--profile[= ]([\w.-]+)", _readme())
    assert named, "README.md shows no 'docker compose --profile X up'"
    assert set(named) <= PROFILES, f"README names profiles compose.yaml lacks: {set(named) - PROFILES}"
    assert set(re.findall(r"--profile[= ]([\w.-]+)", _readme_docker_section())) == PROFILES
