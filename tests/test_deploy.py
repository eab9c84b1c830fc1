"""deploy/: the image, the compose file and the Kubernetes manifests agree with the gateway they run.

Offline and static: no Docker daemon or cluster. Manifests are checked against the Kubernetes schemas that
kubernetes-validate ships; commands, settings, probe paths and ports against the code and the committed
OpenAPI document; the healthcheck command is run against a local stand-in server.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from router.policy.loader import read_policy
from router.server import _GRACEFUL_SHUTDOWN_S
from router.settings import GatewaySettings, RouterSettings
from router.tools.cli import _parser, main

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "env.example"
ROUTES = ROOT / "routes.yaml"
OPENAPI = ROOT / "schemas" / "openapi.json"

KUBERNETES_VERSION = "1.30.0"
"""The oldest Kubernetes the manifests promise: the preStop sleep action is on by default from 1.30."""

STATE_URL = "ROUTER_STATE_URL"
"""Shared provider health on Redis: a setting being added alongside this work, allowed here explicitly
until it is a settings field (afterwards it is found among the fields as well)."""


def setting_variables() -> set[str]:
    """Every ROUTER_* variable the library or the gateway reads."""
    fields = set(GatewaySettings.model_fields) | set(RouterSettings.model_fields)
    return {f"ROUTER_{name.upper()}" for name in fields} | {STATE_URL}


def provider_key_variables() -> set[str]:
    """The variables routes.yaml names as its providers' keys."""
    providers = read_policy(ROUTES).policy.providers.values()
    return {spec.api_key_env for spec in providers if spec.api_key_env}


def served_paths() -> set[str]:
    """The paths the gateway serves, from its committed OpenAPI document (kept current by test_openapi)."""
    return set(json.loads(OPENAPI.read_text())["paths"])


# -- Kubernetes -----------------------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    """Every Kubernetes manifest in deploy/kubernetes (the kustomization is kustomize's, not the API's)."""
    return sorted(path for path in KUBERNETES.glob("*.yaml") if path.name != "kustomization.yaml")


def manifests() -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) for every document of every manifest."""
    return [
        (path.name, document)
        for path in manifest_files()
        for document in yaml.safe_load_all(path.read_text())
        if document is not None
    ]


def resource(kind: str, name: str) -> dict[str, Any]:
    """The one manifest document of ``kind`` named ``name``."""
    found = [doc for _, doc in manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def gateway() -> dict[str, Any]:
    return resource("Deployment", "router-gateway")


def gateway_container() -> dict[str, Any]:
    containers = gateway()["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A container's env entries by name."""
    return {entry["name"]: entry for entry in container.get("env", [])}


def container_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port, resolved through the container's named ports."""
    if isinstance(port, int):
        return port
    numbers = [entry["containerPort"] for entry in container["ports"] if entry.get("name") == port]
    assert numbers, f"no container port named {port!r}"
    return int(numbers[0])


def labelled(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


class TestKubernetesManifests:
    @pytest.mark.parametrize(
        ("name", "document"),
        manifests(),
        ids=[f"{name}:{doc['kind']}/{doc['metadata']['name']}" for name, doc in manifests()],
    )
    def test_every_manifest_is_valid_for_kubernetes(self, name: str, document: dict[str, Any]) -> None:
        """Each document validates against the strict Kubernetes schema: unknown fields and wrong types fail."""
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {exc.message}")

    def test_kustomization_lists_every_manifest(self) -> None:
        """`kubectl apply -k` applies every manifest, and its images: entry names the gateway's image."""
        kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
        assert set(kustomization["resources"]) == {path.name for path in manifest_files()}
        image = gateway_container()["image"].rsplit(":", 1)[0]
        assert image in {entry["name"] for entry in kustomization["images"]}

    def test_no_secret_values_are_committed(self) -> None:
        """Keys arrive only through references to Secrets that operators create; none is committed."""
        assert not [doc for _, doc in manifests() if doc["kind"] == "Secret"]
        for name, entry in env_of(gateway_container()).items():
            if name.endswith(("_KEY", "_KEYS")):
                assert "value" not in entry, f"{name} has a literal value"

    def test_configmap_holds_the_repository_policy(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """The ConfigMap's routes.yaml is the repository's, and `router validate` passes it (tests: included)."""
        policy = resource("ConfigMap", "router-policy")["data"]["routes.yaml"]
        assert policy == ROUTES.read_text(), (
            "deploy/kubernetes/configmap.yaml is out of date: copy routes.yaml into its data.routes.yaml"
        )
        copy = tmp_path / "routes.yaml"
        copy.write_text(policy)
        assert main(["validate", str(copy)]) == 0, capsys.readouterr().out

    def test_policy_directory_is_mounted_where_router_policy_points(self) -> None:
        """The ConfigMap is mounted as a directory (a subPath mount never sees updates) at ROUTER_POLICY's."""
        container, pod = gateway_container(), gateway()["spec"]["template"]["spec"]
        policy = PurePosixPath(env_of(container)["ROUTER_POLICY"]["value"])
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        mounts = [mount for mount in container["volumeMounts"] if "configMap" in volumes[mount["name"]]]
        assert len(mounts) == 1
        mount = mounts[0]
        assert "subPath" not in mount
        assert "subPathExpr" not in mount
        assert PurePosixPath(mount["mountPath"]) == policy.parent
        assert mount.get("readOnly") is True
        configmap = resource("ConfigMap", volumes[mount["name"]]["configMap"]["name"])
        assert policy.name in configmap["data"]
        assert "items" not in volumes[mount["name"]]["configMap"]

    def test_probes_use_endpoints_the_gateway_serves_on_its_port(self) -> None:
        """Readiness asks /readyz (a policy is loaded), liveness /healthz, on the port the gateway binds."""
        container = gateway_container()
        port = int(env_of(container)["ROUTER_PORT"]["value"])
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = container[kind]["httpGet"]
            assert probe["path"] in served_paths(), f"{kind} asks for a path the gateway does not serve"
            assert container_port(container, probe["port"]) == port
        assert env_of(container)["ROUTER_HOST"]["value"] == "0.0.0.0"

    def test_router_variables_are_real_settings(self) -> None:
        """Every ROUTER_* variable the Deployment sets is read by router (a typo would be silently ignored)."""
        names = {name for name in env_of(gateway_container()) if name.startswith("ROUTER_")}
        assert names, "the Deployment sets no ROUTER_* variable"
        assert names <= setting_variables(), f"not settings: {sorted(names - setting_variables())}"

    def test_every_provider_key_comes_from_an_optional_secret_reference(self) -> None:
        """Each api_key_env of routes.yaml is a secretKeyRef that may be missing (its provider is then left out)."""
        env = env_of(gateway_container())
        for name in provider_key_variables():
            assert name in env, f"{name} (api_key_env in routes.yaml) is not passed to the gateway"
            reference = env[name]["valueFrom"]["secretKeyRef"]
            assert reference["key"] == name
            assert reference.get("optional") is True
        referenced = {name for name, entry in env.items() if "secretKeyRef" in entry.get("valueFrom", {})}
        secret_backed = referenced - {"ROUTER_API_KEYS"}
        assert secret_backed <= provider_key_variables(), "a key variable that routes.yaml no longer names"

    def test_gateway_keys_come_from_a_required_secret(self) -> None:
        """Without the gateway-keys Secret the pod does not start, rather than serving open to the cluster."""
        reference = env_of(gateway_container())["ROUTER_API_KEYS"]["valueFrom"]["secretKeyRef"]
        assert reference["key"] == "ROUTER_API_KEYS"
        assert reference.get("optional", False) is False

    def test_state_url_points_at_the_redis_service(self) -> None:
        """ROUTER_STATE_URL names the Redis Service and its port, and that Service selects the Redis pods."""
        url = urlsplit(env_of(gateway_container())[STATE_URL]["value"])
        assert url.scheme == "redis"
        service = resource("Service", url.hostname or "")
        assert url.port in {port["port"] for port in service["spec"]["ports"]}
        redis = [
            doc
            for _, doc in manifests()
            if doc["kind"] == "Deployment"
            and labelled(service["spec"]["selector"], doc["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(redis) == 1
        assert redis[0]["spec"]["template"]["spec"]["containers"][0]["image"].startswith("redis:")

    def test_shutdown_fits_in_the_grace_period(self) -> None:
        """The preStop sleep plus the gateway's own drain end before Kubernetes sends SIGKILL."""
        pod = gateway()["spec"]["template"]["spec"]
        pre_stop = gateway_container()["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pre_stop > 0
        assert pod["terminationGracePeriodSeconds"] > pre_stop + _GRACEFUL_SHUTDOWN_S

    def test_pod_runs_as_the_image_user_on_a_read_only_root(self) -> None:
        """Non-root with the image's UID, read-only root filesystem, a writable /tmp, bounded resources."""
        pod, container = gateway()["spec"]["template"]["spec"], gateway_container()
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == Dockerfile().uid
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        tmp = [mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"]
        assert len(tmp) == 1
        assert "emptyDir" in volumes[tmp[0]["name"]]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound])

    def test_serve_command_is_a_real_subcommand(self) -> None:
        """The container's args parse as the router CLI's `serve`."""
        args = _parser().parse_args(gateway_container()["args"])
        assert args.command == "serve"

    def test_scaling_objects_select_the_gateway(self) -> None:
        """Service, PodDisruptionBudget and HPA all reach the gateway's pods, and a drain can make progress."""
        deployment = gateway()
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labelled(deployment["spec"]["selector"]["matchLabels"], labels)
        service = resource("Service", "router-gateway")
        assert labelled(service["spec"]["selector"], labels)
        for port in service["spec"]["ports"]:
            assert container_port(gateway_container(), port["targetPort"]) == 8000
        budget = resource("PodDisruptionBudget", "router-gateway")["spec"]
        assert labelled(budget["selector"]["matchLabels"], labels)
        autoscaler = resource("HorizontalPodAutoscaler", "router-gateway")["spec"]
        target = autoscaler["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
        assert deployment["spec"]["replicas"] == autoscaler["minReplicas"] == 3
        if "minAvailable" in budget:
            assert budget["minAvailable"] < autoscaler["minReplicas"]
        else:
            assert budget["maxUnavailable"] >= 1


# -- Dockerfile -----------------------------------------------------------------------------------------


class Dockerfile:
    """deploy/Dockerfile, read instruction by instruction (continuations joined, comments dropped)."""

    def __init__(self) -> None:
        self.instructions: list[tuple[str, str]] = []
        pending = ""
        for line in DOCKERFILE.read_text().splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            keyword, _, rest = (pending + stripped).partition(" ")
            self.instructions.append((keyword.upper(), rest.strip()))
            pending = ""
        starts = [i for i, (keyword, _) in enumerate(self.instructions) if keyword == "FROM"]
        self.args = dict(rest.split("=", 1) for keyword, rest in self.instructions[: starts[0]] if keyword == "ARG")
        self.stages = [self.instructions[start:end] for start, end in zip(starts, [*starts[1:], None], strict=True)]
        self.final = self.stages[-1]

    def last(self, keyword: str) -> str:
        """The final stage's last ``keyword`` instruction (the one in force)."""
        found = [rest for key, rest in self.final if key == keyword]
        assert found, f"the final stage has no {keyword}"
        return found[-1]

    def bases(self) -> list[str]:
        """Each stage's base image, with ARG defaults substituted."""
        images = []
        for stage in self.stages:
            image = stage[0][1].split()[0]
            images.append(re.sub(r"\$\{(\w+)\}", lambda match: self.args[match.group(1)], image))
        return images

    def env(self) -> dict[str, str]:
        """The final stage's ENV, as variables."""
        variables: dict[str, str] = {}
        for key, rest in self.final:
            if key == "ENV":
                for pair in shlex.split(rest):
                    name, _, value = pair.partition("=")
                    variables[name] = value
        return variables

    def healthcheck(self) -> tuple[list[str], list[str]]:
        """(options, exec-form command) of the HEALTHCHECK."""
        options, _, command = self.last("HEALTHCHECK").partition(" CMD ")
        return options.split(), json.loads(command)

    def copies(self) -> list[list[str]]:
        """The sources of every COPY from the build context (not --from another stage)."""
        sources = []
        for stage in self.stages:
            for key, rest in stage:
                words = rest.split()
                if key == "COPY" and not any(word.startswith("--from") for word in words):
                    sources.append([word for word in words if not word.startswith("--")][:-1])
        return sources

    @property
    def uid(self) -> int:
        return int(self.last("USER").split(":")[0])


@contextlib.contextmanager
def stand_in(status: int) -> Iterator[int]:
    """A local server answering GET /healthz with ``status`` (and 404 elsewhere); yields its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == "/healthz" else 404)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(command: list[str], port: int) -> int:
    """Run the image's healthcheck command here (its python is this interpreter); its exit code."""
    assert command[0] == "python"
    env = {name: value for name, value in os.environ.items() if name.lower() != "no_proxy"}
    refusing = "http://127.0.0.1:9"  # a proxy that refuses connections: the check must not go through it
    env |= {"ROUTER_PORT": str(port), "HTTP_PROXY": refusing, "http_proxy": refusing}
    return subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30, check=False
    ).returncode


class TestDockerfile:
    def test_multi_stage_build_on_slim_python(self) -> None:
        """A builder and a runtime stage, both on the same slim official Python; only the venv crosses over."""
        dockerfile = Dockerfile()
        bases = dockerfile.bases()
        assert len(bases) >= 2
        assert len(set(bases)) == 1, "the venv's python symlink needs the same base image in both stages"
        assert re.fullmatch(r"python:3\.1[12]-slim(-\w+)?", bases[0])
        crossing = [rest for key, rest in dockerfile.final if key == "COPY" and "--from=" in rest]
        assert len(crossing) == 1
        assert crossing[0].split()[1:] == ["/opt/router", "/opt/router"]
        assert dockerfile.env()["PATH"].startswith("/opt/router/bin:")

    def test_runs_as_a_fixed_non_root_user(self) -> None:
        """USER is numeric (Kubernetes can verify runAsNonRoot) and not root."""
        user = Dockerfile().last("USER")
        assert re.fullmatch(r"\d+(:\d+)?", user)
        assert Dockerfile().uid != 0

    def test_entrypoint_and_command_run_the_gateway(self) -> None:
        """ENTRYPOINT is the `router` console script pyproject declares and CMD is its real `serve`."""
        dockerfile = Dockerfile()
        entrypoint, command = json.loads(dockerfile.last("ENTRYPOINT")), json.loads(dockerfile.last("CMD"))
        scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
        assert entrypoint == ["router"]
        assert scripts["router"] == "router.tools.cli:main"
        assert _parser().parse_args(command).command == "serve"

    def test_environment_binds_every_address_and_reads_the_mounted_policy(self) -> None:
        """ROUTER_HOST is 0.0.0.0, ROUTER_POLICY is where the default is copied, EXPOSE is ROUTER_PORT."""
        dockerfile = Dockerfile()
        env = dockerfile.env()
        assert env["ROUTER_HOST"] == "0.0.0.0"
        assert env["ROUTER_POLICY"] == "/etc/router/routes.yaml"
        assert ["routes.yaml", env["ROUTER_POLICY"]] in [
            rest.split() for key, rest in dockerfile.final if key == "COPY"
        ]
        assert dockerfile.last("EXPOSE") == env["ROUTER_PORT"]
        names = {name for name in env if name.startswith("ROUTER_")}
        assert names <= setting_variables(), f"not settings: {sorted(names - setting_variables())}"
        assert dockerfile.last("STOPSIGNAL") == "SIGTERM"

    def test_healthcheck_asks_healthz_with_python(self) -> None:
        """The healthcheck needs no curl (a slim image has none) and asks for a path the gateway serves."""
        options, command = Dockerfile().healthcheck()
        assert command[:2] == ["python", "-c"]
        assert any(option.startswith("--start-period=") for option in options)
        url = re.search(r"https?://[^/'\"]+(/[^'\" ]*)", command[2])
        assert url is not None
        assert url.group(1) == "/healthz"
        assert "/healthz" in served_paths()

    def test_healthcheck_passes_on_healthy_and_fails_otherwise(self) -> None:
        """Exit 0 when /healthz answers 200 on ROUTER_PORT (proxies ignored), non-zero on 503 or no server."""
        _, command = Dockerfile().healthcheck()
        with stand_in(200) as port:
            assert run_healthcheck(command, port) == 0
        with stand_in(503) as port:
            assert run_healthcheck(command, port) == 1
        assert run_healthcheck(command, port) == 1  # that server is gone: connection refused

    def test_copied_sources_are_in_the_build_context(self) -> None:
        """Every file COPY takes from the context exists and survives .dockerignore."""
        for sources in Dockerfile().copies():
            for source in sources:
                path = ROOT / source
                assert path.exists(), f"COPY {source}: no such file"
                assert not dockerignored(source.rstrip("/")), f"COPY {source}: excluded by .dockerignore"
        package = [
            path.relative_to(ROOT).as_posix()
            for path in (ROOT / "router").rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        ]
        assert package
        assert not [path for path in package if dockerignored(path)]


# -- .dockerignore --------------------------------------------------------------------------------------


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regular expression (Go's filepath.Match plus ``**``)."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignored(path: str) -> bool:
    """Whether Docker leaves ``path`` (relative to the root) out of the build context: the last pattern
    matching the path or one of its parent directories decides, ``!`` re-including."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    ignored = False
    for line in DOCKERIGNORE.read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        regex = glob_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


class TestDockerignore:
    @pytest.mark.parametrize(
        "path",
        [
            ".venv/bin/python",
            ".git/HEAD",
            ".pytest_cache/v/cache/nodeids",
            ".mypy_cache/3.11/router",
            ".ruff_cache/CACHEDIR.TAG",
            ".hypothesis/examples/x",
            "router/__pycache__/cli.cpython-311.pyc",
            "tests/test_cli.py",
            ".env",
            "deploy/.env",
        ],
    )
    def test_local_state_and_secrets_stay_out(self, path: str) -> None:
        """Virtual environments, git, caches, tests and .env files never reach the build context."""
        assert dockerignored(path)

    @pytest.mark.parametrize("path", ["pyproject.toml", "README.md", "routes.yaml", "router/tools/cli.py"])
    def test_build_inputs_are_kept(self, path: str) -> None:
        """What the wheel is built from is in the context."""
        assert not dockerignored(path)


# -- compose --------------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def gateways() -> dict[str, dict[str, Any]]:
    """The compose services built from deploy/Dockerfile."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)", duration)
    assert match, f"unexpected duration {duration!r}"
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[match.group(2)]


class TestCompose:
    def test_two_gateway_replicas_on_their_own_ports(self) -> None:
        """Two gateway services from the repository's Dockerfile, each published on a port of its own."""
        services = gateways()
        assert len(services) == 2
        for service in services.values():
            assert (DEPLOY / service["build"]["context"]).resolve() == ROOT
        published = [port.rsplit(":", 2)[-2] for service in services.values() for port in service["ports"]]
        assert len(published) == len(set(published)) == 2

    def test_redis_is_healthy_before_the_gateways_start(self) -> None:
        """Redis has a `redis-cli ping` healthcheck and the gateways wait for it to pass."""
        redis = compose()["services"]["redis"]
        assert redis["image"].startswith("redis:")
        assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
        for service in gateways().values():
            assert service["depends_on"]["redis"]["condition"] == "service_healthy"
            url = urlsplit(service["environment"][STATE_URL])
            assert (url.scheme, url.hostname, url.port) == ("redis", "redis", 6379)

    def test_policy_is_mounted_read_only_where_the_image_reads_it(self) -> None:
        """The repository's routes.yaml is bind-mounted read-only at the image's ROUTER_POLICY."""
        for service in gateways().values():
            binds = [volume for volume in service["volumes"] if volume["type"] == "bind"]
            assert len(binds) == 1
            assert (DEPLOY / binds[0]["source"]).resolve() == ROUTES
            assert binds[0]["target"] == Dockerfile().env()["ROUTER_POLICY"]
            assert binds[0]["read_only"] is True

    def test_keys_come_from_the_operators_env_file(self) -> None:
        """The gateways read deploy/.env, the operator's copy of env.example; keys are never inline."""
        assert ENV_EXAMPLE.is_file()
        for service in gateways().values():
            assert service["env_file"] == ".env"
            inline = set(service.get("environment", {}))
            assert not {name for name in inline if name.endswith(("_KEY", "_KEYS"))}
            names = {name for name in inline if name.startswith("ROUTER_")}
            assert names <= setting_variables()

    def test_healthcheck_and_stop_grace_match_the_image(self) -> None:
        """The gateways' healthcheck is the image's, and they get longer than the 30 s drain to stop."""
        _, command = Dockerfile().healthcheck()
        for service in gateways().values():
            assert service["healthcheck"]["test"] == ["CMD", *command]
            assert seconds(service["stop_grace_period"]) > _GRACEFUL_SHUTDOWN_S
            assert service["read_only"] is True
            assert "/tmp" in service["tmpfs"]


class TestEnvExample:
    def assignments(self) -> dict[str, str]:
        lines = [line for line in ENV_EXAMPLE.read_text().splitlines() if line.strip() and not line.startswith("#")]
        return dict(line.split("=", 1) for line in lines)

    def test_it_names_every_key_and_holds_no_value(self) -> None:
        """Every provider key variable and ROUTER_API_KEYS are listed, all empty: the example holds no secret."""
        variables = self.assignments()
        assert provider_key_variables() | {"ROUTER_API_KEYS"} <= set(variables)
        assert not {name: value for name, value in variables.items() if value.strip()}
        names = {name for name in variables if name.startswith("ROUTER_")}
        assert names <= setting_variables()
