from __future__ import annotations

from pathlib import Path

import pytest

from ticketsys.config import ConfigError, DeploymentMode, LogFormat, Settings, load_settings


def _load(
    env: dict[str, str] | None = None, overrides: dict[str, str] | None = None, env_file: Path | None = None
) -> Settings:
    return load_settings(overrides, env or {}, env_file)


def test_defaults_match_the_spec() -> None:
    settings = _load()
    assert settings.deployment_mode is DeploymentMode.MICROSERVICES
    assert settings.initial_stock == 10_000
    assert (settings.monolith_port, settings.vacancy_port, settings.ticket_port) == (8000, 8001, 8002)
    assert settings.vacancy_url == "http://localhost:8001"
    assert settings.host == "127.0.0.1"
    # A dead Vacancy must give the buyer a 503 within 1 s: connect + read stay under it.
    assert settings.vacancy_connect_timeout + settings.vacancy_timeout < 1.0


def test_environment_values_are_parsed() -> None:
    settings = _load({"INITIAL_STOCK": "1_000", "DEPLOYMENT_MODE": "Monolith", "VACANCY_TIMEOUT": "0.2"})
    assert settings.initial_stock == 1000
    assert settings.deployment_mode is DeploymentMode.MONOLITH
    assert settings.vacancy_timeout == 0.2


def test_precedence_flags_over_environment_over_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("INITIAL_STOCK=1\nMONOLITH_PORT=9001\nHOST=0.0.0.0\n")
    settings = _load({"MONOLITH_PORT": "9002", "HOST": "::1"}, {"HOST": "localhost"}, env_file)
    assert settings.initial_stock == 1  # only in .env
    assert settings.monolith_port == 9002  # environment over .env
    assert settings.host == "localhost"  # flag over environment


def test_env_file_syntax(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\n\nDEPLOYMENT_MODE=monolith  # or microservices\nexport TICKET_PORT=9100\n"
        "VACANCY_URL='http://vacancy:8001'\n"
    )
    settings = _load(env_file=env_file)
    assert settings.deployment_mode is DeploymentMode.MONOLITH
    assert settings.ticket_port == 9100
    assert settings.vacancy_url == "http://vacancy:8001"


def test_env_file_syntax_error_names_the_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("OK=1\nthis is not an assignment\n")
    with pytest.raises(ConfigError, match=r"\.env:2"):
        _load(env_file=env_file)


def test_missing_env_file_is_fine(tmp_path: Path) -> None:
    assert _load(env_file=tmp_path / "absent") == Settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INITIAL_STOCK", "abc"),
        ("INITIAL_STOCK", "-1"),
        ("MONOLITH_PORT", "99999"),
        ("TICKET_PORT", "0"),
        ("DEPLOYMENT_MODE", "cluster"),
        ("VACANCY_URL", "localhost:8001"),
        ("VACANCY_URL", "ftp://x"),
        ("VACANCY_URL", "http://x:notaport"),
        ("VACANCY_URL", "http://x/api"),
        ("HOST", " "),
        ("MAX_QTY", "0"),
        ("VACANCY_TIMEOUT", "nan"),
        ("VACANCY_TIMEOUT", "-1"),
        ("LOG_LEVEL", "loud"),
        ("LOG_FORMAT", "xml"),
        ("ACCESS_LOG", "maybe"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load({variable: value})
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}=")
    assert "\n" not in str(caught.value)


def test_log_format_and_access_log() -> None:
    assert (Settings().log_format, Settings().access_log) == (LogFormat.TEXT, False)  # off: it costs
    chosen = _load({"LOG_FORMAT": "JSON", "ACCESS_LOG": "1"})
    assert (chosen.log_format, chosen.access_log) == (LogFormat.JSON, True)


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().initial_stock = 5  # type: ignore[misc]


def test_vacancy_url_may_list_replicas() -> None:
    settings = _load({"VACANCY_URL": "http://a:8001/, http://b:8001"})
    assert settings.vacancy_urls == ["http://a:8001", "http://b:8001"]
    with pytest.raises(ConfigError, match="VACANCY_URL"):
        _load({"VACANCY_URL": "http://a:8001,ftp://b"})


def test_stock_store_accepts_redis_urls() -> None:
    assert _load({"STOCK_STORE": "redis://cache:6379/2"}).shared_store
    assert not _load({"STOCK_STORE": "sqlite"}).shared_store
    for bad in ("redis://", "redis://h/x", "journal", "postgres"):
        with pytest.raises(ConfigError, match="STOCK_STORE"):
            _load({"STOCK_STORE": bad})


def test_cors_origins_are_off_by_default_and_normalised_as_browsers_send_them() -> None:
    assert _load({}).cors_origins == ()
    settings = _load({"CORS_ORIGINS": " HTTPS://Shop.Example:443/ , http://localhost:5173,http://[::1]:8080"})
    assert settings.cors_origins == ("https://shop.example", "http://localhost:5173", "http://[::1]:8080")
    assert _load({"CORS_ORIGINS": "*"}).cors_origins == ("*",)
    assert _load({"CORS_ORIGINS": "http://a.example:80,http://a.example"}).cors_origins == (
        "http://a.example",
    )


@pytest.mark.parametrize(
    "value",
    [
        "shop.example",
        "https://shop.example/app",
        "https://shop.example?x=1",
        "https://user@shop.example",
        "https://*.shop.example",
        "https://shop.example:99999",
        "*, https://shop.example",
        "null",
        "https://",
    ],
)
def test_a_bad_cors_origin_is_refused_by_name(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load({"CORS_ORIGINS": value})
    assert caught.value.variable == "CORS_ORIGINS"
    assert "\n" not in str(caught.value)
