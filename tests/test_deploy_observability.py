"""The observability deployment files (deploy/prometheus.yml, deploy/grafana/, compose's
``observability`` profile) agree with compose.yaml and with what the apps export.

Read as tests/test_deployment_files.py reads the others (no Docker engine runs here), plus one
check no file reading can make: every metric the dashboard queries is exported by a real
scrape of real processes, a monolith and both services."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import services
from tests.test_deployment_files import SERVICE_PORTS, _in_profile, _is_ticketsys, _ports, _role, _services

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "ticketsys.json"
# What an operator wants to see during a sale (issue 14): a panel each, found by its title.
PANELS = ("sales", "tickets left", "p50", "p95", "p99", "hop", "errors", "pool", "loop lag", "gc", "memory")
# PromQL's own words, which look like metric names to the pattern below.
PROMQL = {"sum", "rate", "by", "le", "max", "min", "histogram_quantile", "without", "irate", "increase"}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> the repository path a service mounts there (bind mounts only)."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = str(volume).split(":")
        if source.startswith("./"):
            found[target] = ROOT / source
    return found


def _queries() -> list[str]:
    return [target["expr"] for panel in _dashboard()["panels"] for target in panel["targets"]]


def _metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers and ranges stripped)."""
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", expr)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare))
    return {word for word in words - PROMQL if "_" in word and not word.startswith("__")}


# --- compose and Prometheus -------------------------------------------------------------------


def test_the_observability_profile_runs_prometheus_and_grafana_and_no_ticketsys() -> None:
    profile = _in_profile("observability")
    assert set(profile) == {"prometheus", "grafana"}
    assert not any(_is_ticketsys(svc) for svc in profile.values())
    assert str(profile["prometheus"]["image"]).startswith("prom/prometheus:")
    assert str(profile["grafana"]["image"]).startswith("grafana/grafana:")
    assert _ports(profile["prometheus"]) == [(9090, 9090)] and _ports(profile["grafana"]) == [(3000, 3000)]


def test_compose_mounts_files_that_exist() -> None:
    for name in ("prometheus", "grafana"):
        for target, source in _mounts(_services()[name]).items():
            assert source.exists(), f"{name} mounts {source} at {target}, which is missing"
    assert _mounts(_services()["prometheus"])["/etc/prometheus/prometheus.yml"] == DEPLOY / "prometheus.yml"


def test_prometheus_scrapes_metrics_of_every_ticketsys_service_on_its_port() -> None:
    config = _yaml(DEPLOY / "prometheus.yml")
    targets = set()
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics", job["job_name"]
        for static in job["static_configs"]:
            targets.update(static["targets"])
    expected = {
        f"{name}:{SERVICE_PORTS[_role(svc)]}" for name, svc in _services().items() if _is_ticketsys(svc)
    }
    assert targets == expected


# --- Grafana ------------------------------------------------------------------------------


def test_grafana_provisions_the_prometheus_data_source_and_the_dashboard_folder() -> None:
    grafana = _services()["grafana"]
    mounts = _mounts(grafana)
    provisioning = mounts["/etc/grafana/provisioning"]
    (source,) = _yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    (provider,) = _yaml(provisioning / "dashboards" / "ticketsys.yml")["providers"]
    folder = mounts[provider["options"]["path"]]  # the path Grafana reads is where compose mounts them
    assert DASHBOARD.parent == folder and DASHBOARD.exists()
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_every_panel_queries_the_provisioned_data_source() -> None:
    (source,) = _yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    dashboard = _dashboard()
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and dashboard["uid"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"] and target["expr"].strip()


def test_the_dashboard_has_the_panels_a_sale_needs() -> None:
    titles = " | ".join(panel["title"].lower() for panel in _dashboard()["panels"])
    missing = [want for want in PANELS if want not in titles]
    assert not missing, f"no panel for {missing}: {titles}"
    hop = " ".join(_queries())
    assert "transport" in hop and "ticketsys_vacancy_call_duration_seconds_bucket" in hop


def test_metric_names_are_read_from_queries() -> None:
    expr = 'histogram_quantile(0.95, sum by (le, route) (rate(a_b_bucket{route!~"/x|/y"}[$__rate_interval])))'
    assert _metric_names(expr) == {"a_b_bucket"}


# --- against real processes -------------------------------------------------------------------


def _exported(text: str) -> set[str]:
    """Every name a query may use: each family's samples, and for a family without samples yet
    (a counter of errors that never happened) the names it will have."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
        names.update(family.name + suffix for suffix in suffixes)
    return names


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    directory = tmp_path_factory.mktemp("scrape")
    monolith = services.start("monolith", directory / "monolith")
    vacancy = services.start("vacancy", directory / "vacancy")
    ticket = services.start("ticket", directory / "ticket", env={"VACANCY_URL": vacancy.url})
    names: set[str] = set()
    with services.running(monolith, ticket, vacancy):
        for front in (monolith, ticket):
            assert services.post(front.url, "/api/v1/purchase", {"qty": 1})[0] == 200
        for service in (monolith, vacancy, ticket):
            status, body = services.get(service.url, "/metrics")
            assert status == 200
            names |= _exported(body.decode())
    return names


@pytest.mark.parametrize("expr", _queries())
def test_every_metric_the_dashboard_queries_is_exported(expr: str, exported: set[str]) -> None:
    used = _metric_names(expr)
    assert used, f"no metric found in {expr}"
    assert used <= exported, f"{sorted(used - exported)} are not exported: {expr}"
