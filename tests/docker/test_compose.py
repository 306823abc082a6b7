"""docker/: the compose file validated by Debian's ``docker-compose config`` (no engine needed)
and the Dockerfile's promises checked on its text."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"
ADMIN_KEY = "k" * 40
DB_PASSWORD = "p" * 24
SCALED = ("api", "worker")
TELEMETRY = {
    "SCARF_NO_ANALYTICS": "true",
    "DO_NOT_TRACK": "true",
    "ORT_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "HF_HUB_OFFLINE": "1",
}


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` with ``env``; the database password is set unless given."""
    env = {"INHOUSE_DB_PASSWORD": DB_PASSWORD, **env}
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install -y docker-compose)")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("INHOUSE_", "OLLAMA_"))}
    return subprocess.run(
        [binary, "-f", str(DOCKER / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = compose_config(INHOUSE_ADMIN_KEY=ADMIN_KEY)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = yaml.safe_load(result.stdout)
    return loaded


def test_services_and_only_the_proxy_port_published(config: dict[str, Any]) -> None:
    services = config["services"]
    assert set(services) == {
        "ollama", "ollama-pull", "chroma", "postgres", "db-upgrade", "api", "proxy", "worker"
    }  # fmt: skip
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"proxy"}
    (port,) = services["proxy"]["ports"]
    target = port["target"] if isinstance(port, dict) else str(port).rsplit(":", 1)[-1]
    assert str(target).removesuffix("/tcp") == "8000"
    assert services["ollama"]["image"].startswith("ollama/ollama:")
    assert services["chroma"]["image"].startswith("chromadb/chroma:")
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["proxy"]["image"].startswith("nginx:")


def test_api_and_worker_can_scale(config: dict[str, Any]) -> None:
    """`--scale api=2 --scale worker=3`: no fixed name or host port on the scaled services,
    and the proxy finds every api replica through Docker's DNS at run time."""
    services = config["services"]
    for name in SCALED:
        assert "container_name" not in services[name], name
        assert not services[name].get("ports"), name
    assert services["api"]["environment"]["INHOUSE_EMBEDDED_WORKER"] == "false"
    assert services["proxy"]["depends_on"]["api"]["condition"] == "service_healthy"
    proxy = (DOCKER / "proxy.conf").read_text()
    assert "resolver 127.0.0.11" in proxy  # Docker's embedded DNS: every replica
    assert re.search(r"set \$(\w+) http://api:8000;.*proxy_pass \$\1;", proxy, re.S)
    assert "proxy_buffering off" in proxy  # streamed answers
    worker = services["worker"]["command"]
    assert worker[:2] == ["inhouse", "worker"] and "--concurrency" in worker
    assert worker[worker.index("--metrics-port") + 1] == "9464"
    assert services["worker"]["environment"]["INHOUSE_METRICS__WORKER_HOST"] == "0.0.0.0"


def test_shared_state_in_postgres_migrated_by_a_one_shot(config: dict[str, Any]) -> None:
    services = config["services"]
    url = f"postgresql://inhouse:{DB_PASSWORD}@postgres:5432/inhouse"
    for name in ("api", "worker", "db-upgrade"):
        assert services[name]["environment"]["INHOUSE_DATABASE_URL"] == url, name
    upgrade = services["db-upgrade"]
    assert upgrade["command"] == ["inhouse", "db", "upgrade"]
    assert upgrade["restart"] == "no"
    assert upgrade["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in SCALED:
        condition = services[name]["depends_on"]["db-upgrade"]["condition"]
        assert condition == "service_completed_successfully", name
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == DB_PASSWORD
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]


def test_database_password_is_required() -> None:
    result = compose_config(INHOUSE_ADMIN_KEY=ADMIN_KEY, INHOUSE_DB_PASSWORD="")
    assert result.returncode != 0
    assert "INHOUSE_DB_PASSWORD" in result.stderr


def test_all_data_in_named_volumes(config: dict[str, Any]) -> None:
    named = set(config["volumes"])
    assert {"ollama-models", "chroma-data", "inhouse-data", "postgres-data"} <= named
    for name, svc in config["services"].items():
        for mount in svc.get("volumes", []):
            source, target = (
                mount.split(":")[:2]
                if isinstance(mount, str)
                else (mount["source"], mount["target"])
            )
            if source in named:
                continue
            # the only bind mounts are read-only config files (sources, policy, proxy)
            configs = {
                "/config/sources.yaml",
                "/config/policy.yaml",
                "/etc/nginx/conf.d/default.conf",
            }
            assert target in configs, (name, mount)
            assert str(mount).endswith(":ro"), (name, mount)
    mounts = {n: " ".join(map(str, s.get("volumes", []))) for n, s in config["services"].items()}
    assert "ollama-models:/root/.ollama" in mounts["ollama"]
    assert "chroma-data:/data" in mounts["chroma"]
    assert "postgres-data:/var/lib/postgresql/data" in mounts["postgres"]
    assert "inhouse-data:/data" in mounts["api"] and "inhouse-data:/data" in mounts["worker"]


def test_model_pull_is_one_shot_and_follows_the_configured_model() -> None:
    result = compose_config(INHOUSE_ADMIN_KEY=ADMIN_KEY, INHOUSE_MODEL="deepseek-r1:14b")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    pull = services["ollama-pull"]
    assert pull["entrypoint"] == ["ollama", "pull", "deepseek-r1:14b"]
    assert pull["restart"] == "no"
    assert pull["depends_on"]["ollama"]["condition"] == "service_healthy"
    api = services["api"]
    assert api["depends_on"]["ollama-pull"]["condition"] == "service_completed_successfully"
    assert api["environment"]["INHOUSE_MODEL"] == "deepseek-r1:14b"
    assert api["environment"]["OLLAMA_HOST"] == "http://ollama:11434"
    assert api["environment"]["INHOUSE_CHROMA_URL"] == "http://chroma:8000"


def test_healthchecks_use_readyz(config: dict[str, Any]) -> None:
    services = config["services"]
    api_check = " ".join(services["api"]["healthcheck"]["test"])
    assert "/readyz" in api_check
    assert services["worker"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert services["worker"]["healthcheck"]["test"]  # overrides the image's HTTP check
    assert "readyz" in (DOCKER / "Dockerfile").read_text().split("HEALTHCHECK", 1)[1]


def test_gpu_reservation_is_there_but_commented() -> None:
    text = (DOCKER / "compose.yaml").read_text()
    commented = [line for line in text.splitlines() if "driver: nvidia" in line]
    assert commented and all(line.lstrip().startswith("#") for line in commented)


def test_admin_key_is_required() -> None:
    result = compose_config()
    assert result.returncode != 0
    assert "INHOUSE_ADMIN_KEY" in result.stderr


def _stages(dockerfile: str) -> list[str]:
    return re.split(r"(?m)^FROM ", dockerfile)[1:]


def test_dockerfile_final_stage() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    stages = _stages(text)
    assert len(stages) >= 2  # multi-stage
    final = stages[-1]
    assert not re.search(r"build-essential|\bgcc\b|\bcmake\b|\bg\+\+", final)
    user = re.search(r"(?m)^USER (\S+)", final)
    assert user and not user.group(1).startswith(("root", "0"))
    for key, value in TELEMETRY.items():
        assert re.search(rf"\b{key}={re.escape(value)}\b", final), key
    # CPU torch, weights only on request
    assert "download.pytorch.org/whl/cpu" in text and "torch==2.13.0" in text
    assert re.search(r"ARG WITH_DEMO_WEIGHTS=0", text)
    assert "gemma" not in text.lower().replace("gemma 3 270m", "")
