"""The ``router`` command: policy tools for operators and CI.

    router validate PATH... [--json]   exit 0 valid and every tests: entry holds, 1 problems, 2 usage
                                       (a deprecated spelling is printed as a warning; alone it still exits 0)
    router explain PATH --model M ...  how one request would be routed, and why providers were dropped
                                       (--header, --tag, --tokens ...: the request when: rules read)
    router diff OLD NEW [--json]       what routes differently (Markdown for a pull request); exit 0 nothing,
                                       1 something, 2 usage or an invalid policy
                                       (--gateway URL: with a running gateway's live provider health)
    router simulate PATH --scenario S  the policy under a traffic and fault model, on virtual time; exit 0
                                       every expect: line holds, 1 one fails, 2 usage or invalid input
                                       (--compare OTHER: two policies side by side; --json; --chart FILE)
    router schema                      the JSON Schema of routes.yaml (--scenario: of simulate's scenarios)
    router speak TEXT [-o FILE] ...    speech to a file, through the policy (eSpeak NG offline, by default)
    router image PROMPT [-o FILE] ...  an image to a file, through the policy
    router serve [--policy P] ...      the OpenAI-compatible gateway

Here: the arguments, and one small handler per command that loads, calls the library and prints. What
``explain`` prints (and the live health it reads with ``--gateway``) is :mod:`router.tools.explain`; ``diff``
compares with :mod:`router.tools.diff` and prints :mod:`router.tools.diff.report`'s Markdown or the ``--json`` form.

Key presence for ``explain`` is read from the environment (through :mod:`router.settings`) unless
``--key``/``--no-keys`` say otherwise; key values are never read into output.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import logging
import re
import sys
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests
import structlog

from router.adapters import audio
from router.client import Client
from router.errors import NoRouteError, PolicyError, PolicyIssue, RouterError
from router.policy import checks
from router.policy.compiler import compile_policy
from router.policy.dimensions import dimension_warnings
from router.policy.loader import LoadedPolicy, read_policy
from router.policy.model import NAMESPACES, json_schema
from router.routing.facts import Facts, facts_of_chat
from router.settings import present_keys
from router.tools.diff import diff_policies
from router.tools.diff import report as diff_report
from router.tools.explain import explain_data, explain_text, failure_data, gateway_health, no_route_text

__all__ = ["main"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
"""A header name (an RFC 9110 token), as ``when: header:`` names are checked."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    args = _parser().parse_args(argv)
    code: int = args.run(args)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="router", description="Route AI requests by a YAML policy.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND", dest="command")

    validate = commands.add_parser("validate", help="check a policy and run its tests: entries")
    validate.add_argument("path", nargs="+", help="the policy file, e.g. routes.yaml (several: each is checked)")
    validate.add_argument("--json", action="store_true", help="machine-readable issues for CI annotations")
    validate.set_defaults(run=_validate)

    _explain_parser(commands)

    diff = commands.add_parser("diff", help="show what routes differently between two policies")
    diff.add_argument("old", help="the policy before the change, e.g. the base branch's routes.yaml")
    diff.add_argument("new", help="the policy after the change")
    diff.add_argument("--json", action="store_true", help="machine-readable changes")
    diff.set_defaults(run=_diff)

    _simulate_parser(commands)

    _schema_parser(commands)

    serve = commands.add_parser("serve", help="run the OpenAI-compatible gateway")
    serve.add_argument("--policy", metavar="PATH", help="policy file (default: $ROUTER_POLICY, ./routes.yaml, shipped)")
    serve.add_argument("--host", help="address to bind (default: $ROUTER_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: $ROUTER_PORT or 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default: $ROUTER_WORKERS or 1)")
    serve.set_defaults(run=_serve)

    speak = commands.add_parser("speak", help="synthesise speech to a file")
    speak.add_argument("text", help="what to say")
    speak.add_argument("-o", "--output", metavar="FILE", help="the audio file (default: ./speech-<id>.<format>)")
    speak.add_argument("--voice", help="a voice of the provider that answers")
    speak.add_argument("--model", default="auto")
    speak.add_argument("--format", choices=audio.FORMATS, help="audio format (default: the -o extension, else mp3)")
    speak.add_argument("--policy", metavar="PATH", help="policy file (default: $ROUTER_POLICY, ./routes.yaml, shipped)")
    speak.set_defaults(run=_speak)

    image = commands.add_parser("image", help="generate an image to a file")
    image.add_argument("prompt", help="what to draw")
    image.add_argument("-o", "--output", metavar="FILE", help="the image file (default: ./image-<id>.<type>)")
    image.add_argument("--model", default="auto")
    image.add_argument("--size", default="1024x1024")
    image.add_argument("--policy", metavar="PATH", help="policy file (default: $ROUTER_POLICY, ./routes.yaml, shipped)")
    image.set_defaults(run=_image)
    return parser


def _schema_parser(commands: Any) -> None:
    schema = commands.add_parser("schema", help="print the JSON Schema of routes.yaml (or the gateway's OpenAPI)")
    schema.add_argument("--openapi", action="store_true", help="print the gateway's OpenAPI document instead")
    schema.add_argument("--scenario", action="store_true", help="print the JSON Schema of router simulate's scenarios")
    schema.set_defaults(run=_schema)


def _simulate_parser(commands: Any) -> None:
    simulate = commands.add_parser("simulate", help="run a policy against a traffic and fault scenario")
    simulate.add_argument("path", help="the policy file (the exit code is this policy's expect: verdict)")
    simulate.add_argument("--scenario", required=True, metavar="FILE", help="the scenario (traffic and faults)")
    simulate.add_argument("--seed", type=int, help="seed of every random draw (default: the scenario's, else 0)")
    simulate.add_argument("--json", action="store_true", help="the report as JSON")
    simulate.add_argument("--compare", metavar="OTHER", help="a second policy, run under the same scenario and seed")
    simulate.add_argument("--chart", metavar="FILE", help="success rate and share over time, PNG or SVG (router[sim])")
    simulate.set_defaults(run=_simulate)


def _explain_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``router explain``'s arguments: the policy, the request and its facts, keys, output."""
    explain = commands.add_parser("explain", help="show how one request would be routed")
    explain.add_argument("path", help="the policy file")
    explain.add_argument("--model", required=True, help='requested model, "provider/model" or "auto"')
    explain.add_argument("--namespace", choices=NAMESPACES, default="chat")
    keys = explain.add_mutually_exclusive_group()
    keys.add_argument(
        "--key", action="append", default=None, metavar="ENV_NAME", help="count only these key variables as set"
    )
    keys.add_argument("--no-keys", action="store_true", help="count no key variable as set")
    explain.add_argument("--exclude", action="append", default=[], metavar="NAME", help="exclude a provider")
    explain.add_argument("--provider", help="prefer this provider, as provider= on a call")
    explain.add_argument("--seed", type=int, help="seed for shuffled ties (replays a route's seed)")
    request = explain.add_argument_group(
        "the request", "what when: rules, order: cost and the context-window pre-check read of the request"
    )
    request.add_argument(
        "--header", action="append", default=[], type=_header, metavar="NAME=VALUE", help="a request header (repeat)"
    )
    request.add_argument("--tag", action="append", default=[], metavar="TAG", help="a tag, as x-router-tag (repeat)")
    request.add_argument("--key-name", metavar="NAME", help="the name of the gateway key the caller uses")
    request.add_argument(
        "--metadata", action="append", default=[], type=_pair, metavar="K=V", help="a body metadata field (repeat)"
    )
    request.add_argument("--user", metavar="U", help="the body's user field")
    request.add_argument("--tools", action="store_true", help="the request offers tools")
    request.add_argument("--images", action="store_true", help="a message carries an image")
    request.add_argument("--tokens", type=_count, metavar="N", help="estimated prompt tokens")
    request.add_argument("--max-tokens", type=_count, metavar="N", help="the request's max_tokens")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.add_argument(
        "--gateway", metavar="URL", help="show the live provider health of a running gateway (GET URL/admin/health)"
    )
    explain.add_argument(
        "--gateway-key", metavar="KEY", help="a gateway key for --gateway (default: $ROUTER_GATEWAY_KEY)"
    )
    explain.set_defaults(run=_explain)


def _pair(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` -> (NAME, VALUE); a usage error otherwise."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def _header(text: str) -> tuple[str, str]:
    name, value = _pair(text)
    if not HEADER_NAME.match(name):
        raise argparse.ArgumentTypeError(f"{name!r} is not a header name (letters, digits and !#$%&'*+.^_`|~- only)")
    return name, value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a count of tokens (0 or more), got {text!r}")
    return value


def _facts(args: argparse.Namespace) -> Facts:
    """The request ``explain`` is told of, built as the clients build theirs (tags from x-router-tag too)."""
    facts = facts_of_chat(
        (),
        max_tokens=args.max_tokens,
        tools=args.tools,
        headers=dict(args.header),
        tags=args.tag,
        key_name=args.key_name,
        metadata=dict(args.metadata),
        user=args.user,
    )
    return dataclasses.replace(facts, prompt_tokens=args.tokens or 0, images=args.images)


def _print_json(data: Any) -> int:
    print(json.dumps(data, indent=2, ensure_ascii=False))
    return EXIT_OK


def _load(path: str) -> tuple[LoadedPolicy | None, list[PolicyIssue], list[PolicyIssue], int]:
    """Read and validate ``path``: (policy, issues, deprecations, exit code when it cannot go on).

    Deprecated spellings come back as located issues for the command to print, not as Python warnings.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            loaded = read_policy(path)
        return loaded, [], list(loaded.deprecations), EXIT_OK
    except PolicyError as exc:
        return None, list(exc.issues), list(exc.deprecations), EXIT_PROBLEMS
    except OSError as exc:
        print(f"router: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return None, [], [], EXIT_USAGE


def _validate(args: argparse.Namespace) -> int:
    """Validate each path (pre-commit passes several); the exit code is the worst of them."""
    reports: list[dict[str, Any]] = []
    code = max(_validate_one(path, args.json, reports) for path in args.path)
    if args.json:
        _print_json(reports[0] if len(args.path) == 1 else reports)
    return code


def _validate_one(path: str, as_json: bool, reports: list[dict[str, Any]]) -> int:
    loaded, issues, deprecations, code = _load(path)
    if code == EXIT_USAGE:
        if as_json:
            reports.append({"path": path, "valid": False, "issues": [], "tests": 0, "error": "cannot read"})
        return code
    tests = 0
    warned: list[PolicyIssue] = []
    if loaded is not None:
        try:
            resolver = compile_policy(loaded.policy)
        except PolicyError as exc:  # a Policy that validated always compiles; kept for honesty of output
            issues = list(exc.issues)
        else:
            tests = len(loaded.policy.tests)
            problems = checks.policy_test_problems(loaded.policy, resolver)
            issues = checks.locate(problems, loaded.file, loaded.positions)
            warnings = [*dimension_warnings(loaded.policy, resolver), *checks.strategy_warnings(loaded.policy)]
            warned = checks.locate(warnings, loaded.file, loaded.positions)
    if as_json:
        reports.append(
            {
                "path": path,
                "valid": not issues,
                "issues": [i.as_dict() for i in issues],
                "warnings": [w.as_dict() for w in [*deprecations, *warned]],
                "tests": tests,
            }
        )
    else:
        for issue in sorted([*issues, *deprecations, *warned], key=lambda i: (i.line or 0, i.column or 0)):
            print(issue)
        if issues:
            print(f"{path}: {len(issues)} problem{'s' if len(issues) != 1 else ''}", file=sys.stderr)
        elif loaded is not None:
            providers = len(loaded.policy.providers)
            note = f"; {len(deprecations)} deprecated spelling{'s' if len(deprecations) != 1 else ''}"
            note = note if deprecations else ""
            note += f"; {len(warned)} warning{'s' if len(warned) != 1 else ''}" if warned else ""
            print(f"{path}: valid ({providers} providers, {tests} test{'s' if tests != 1 else ''} passed{note})")
    return EXIT_PROBLEMS if issues else EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    loaded, issues, _, code = _load(args.path)
    if loaded is None:
        for issue in issues:
            print(issue)
        return code
    resolver = compile_policy(loaded.policy)
    if args.no_keys:
        keys: frozenset[str] = frozenset()
    elif args.key is not None:
        keys = frozenset(args.key)
    else:
        keys = present_keys(p.api_key_env for p in resolver.providers)
    try:
        facts = _facts(args)
        route = resolver.resolve(
            args.namespace,
            args.model,
            provider=args.provider,
            keys=keys,
            exclude=args.exclude,
            seed=args.seed,
            facts=facts,
        )
    except (NoRouteError, ValueError) as exc:
        return _explain_failure(args, exc)
    view = resolver.availability(args.namespace, keys=keys, exclude=args.exclude)
    dropped = {resolver.names[i]: why for i, why in view.dropped.items()}
    try:
        health = gateway_health(args.gateway, args.gateway_key) if args.gateway else None
    except (requests.RequestException, ValueError) as exc:
        print(f"router explain: cannot read health from {args.gateway}: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    if args.json:
        return _print_json(explain_data(args.path, route, dropped, health, resolver=resolver, facts=facts))
    print(explain_text(args.path, resolver, route, dropped, health, facts=facts))
    return EXIT_OK


def _explain_failure(args: argparse.Namespace, exc: Exception) -> int:
    if args.json:
        _print_json(failure_data(args.namespace, args.model, exc))
    elif isinstance(exc, NoRouteError):
        print(no_route_text(args.namespace, args.model, exc))
    else:
        print(f"router explain: {exc}", file=sys.stderr)
    return EXIT_PROBLEMS


def _diff(args: argparse.Namespace) -> int:
    """Compare two policies; an unreadable or invalid one is a usage error (2), with its located problems."""
    loaded = {}
    problems: list[dict[str, Any]] = []
    for path in (args.old, args.new):
        policy, issues, _, _ = _load(path)
        if policy is None:
            problems.append({"path": path, "issues": [issue.as_dict() for issue in issues]})
            for issue in issues:
                print(issue, file=sys.stderr)
        loaded[path] = policy
    old, new = loaded[args.old], loaded[args.new]
    if old is None or new is None:
        if args.json:
            _print_json({"old": args.old, "new": args.new, "valid": False, "invalid": problems})
        print(f"router diff: {', '.join(p['path'] for p in problems)} cannot be compared", file=sys.stderr)
        return EXIT_USAGE
    result = diff_policies(old.policy, new.policy)
    if args.json:
        _print_json({"old": args.old, "new": args.new, "valid": True, **result.as_dict()})
    else:
        print(diff_report.markdown(args.old, args.new, result))
    return EXIT_PROBLEMS if result else EXIT_OK


def _simulate(args: argparse.Namespace) -> int:
    from router.tools.simulate.command import run  # noqa: PLC0415 - the simulator loads only when it runs

    return run(args)


def _schema(args: argparse.Namespace) -> int:
    if args.openapi:
        from router.server import openapi  # noqa: PLC0415 - the gateway's stack loads only when asked

        return _print_json(openapi())
    if args.scenario:
        from router.tools.simulate.scenario import json_schema as scenario_schema  # noqa: PLC0415 - on use

        return _print_json(scenario_schema())
    return _print_json(json_schema())


def _serve(args: argparse.Namespace) -> int:
    from router.server import run_api  # noqa: PLC0415 - the gateway's stack loads only when it runs
    from router.settings import GatewaySettings  # noqa: PLC0415

    settings = GatewaySettings()
    run_api(
        args.host or settings.host,
        args.port if args.port is not None else settings.port,
        args.policy or settings.policy,
        args.workers or settings.workers,
    )
    return EXIT_OK


def _speak(args: argparse.Namespace) -> int:
    extension = Path(args.output).suffix.lstrip(".").lower() if args.output else ""
    fmt = args.format or (extension if extension in audio.FORMATS else "mp3")
    target = Path(args.output or f"speech-{uuid.uuid4().hex[:8]}.{fmt}")

    def run(client: Client) -> str:
        stream = client.audio.speech.create(
            args.text, model=args.model, voice=args.voice, response_format=fmt, stream=True
        )
        with target.open("wb") as file:
            for chunk in stream:
                file.write(chunk)
        speech = client.audio.speech
        return f"{target} ({fmt}, {target.stat().st_size} bytes) from {speech.last_provider}:{speech.last_model}"

    return _media(args, run)


def _image(args: argparse.Namespace) -> int:
    def run(client: Client) -> str:
        answer = client.images.generate(args.prompt, model=args.model, size=args.size, response_format="b64_json")
        data = base64.b64decode(answer.data[0].b64_json or "")
        target = Path(args.output or f"image-{uuid.uuid4().hex[:8]}.{_image_type(data)}")
        target.write_bytes(data)
        return f"{target} ({len(data)} bytes) from {answer.provider}:{answer.model}"

    return _media(args, run)


def _media(args: argparse.Namespace, run: Callable[[Client], str]) -> int:
    """Run one media request with events on stderr; the result line on stdout, errors on stderr."""
    _log_to_stderr()
    try:
        with Client(args.policy) as client:
            print(run(client))
    except (RouterError, ValueError, OSError) as exc:
        print(f"router {args.command}: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def _image_type(data: bytes) -> str:
    if data.startswith(b"\xff\xd8"):
        return "jpg"
    if data[8:12] == b"WEBP":
        return "webp"
    return "png"


def _log_to_stderr() -> None:
    """The CLI's logging: structured events on stderr, console-rendered on a terminal, JSON lines otherwise."""
    renderer: Any = structlog.dev.ConsoleRenderer() if sys.stderr.isatty() else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


if __name__ == "__main__":
    sys.exit(main())
