"""The speech namespace's work between the client and the executor: the request, and one attempt at it.

An attempt makes audio in the format the caller asked for: the provider's own when it offers that format,
else PCM converted by :mod:`router.adapters.audio` (eSpeak NG always goes that way, in-process). A voice the policy
does not list for the candidate is replaced by the candidate's first listed voice, so a request can fail
over between providers whose voices have different names. No audio is a ``SpeechNotGeneratedError``
(class ``empty``) and fails over.

In-process engines are bounded like a provider: the synthesis stops at the attempt's time limit, and in
the async client when the awaiting task is cancelled (the gateway's caller left).

Streaming (``stream=True``) commits at the first bytes of audio, as chat streams commit at the first
content: failures before that fail over unseen, a failure after it raises ``StreamInterruptedError``. Audio
the provider produces natively is streamed as it arrives; converted audio is produced whole, then chunked.
"""

from __future__ import annotations

import dataclasses
import itertools
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar

from router import events
from router.adapters import audio
from router.adapters.base import Adapter, LocalSpeech, SpeechRequest
from router.errors import BadRequestError, ProviderError, ProviderTimeoutError, SpeechNotGeneratedError
from router.execution.executor import attempt_limit
from router.execution.streaming import interrupted
from router.routing.clock import SYSTEM, Clock
from router.routing.resolver import Candidate, ProviderSpec
from router.transport.sync import (
    AsyncStreamResponse,
    AsyncTransport,
    HttpResponse,
    Proxies,
    RequestsTransport,
    StreamResponse,
)

__all__ = ["AsyncAudioStream", "AudioStream", "save", "speech_attempt", "speech_attempt_async", "speech_request"]

Handles = Callable[[str], tuple[Adapter, RequestsTransport]]
AsyncHandles = Callable[[str], tuple[Adapter, AsyncTransport]]


def speech_request(
    text: str | None,
    *,
    voice: str | None,
    response_format: str,
    instructions: str | None,
    speed: float | None,
    extra: Mapping[str, Any],
) -> SpeechRequest:
    """The caller's arguments as a SpeechRequest; ValueError for empty input or an unknown format."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("input must be non-empty text")
    if response_format not in audio.FORMATS:
        raise ValueError(f"response_format must be one of {', '.join(audio.FORMATS)}, not {response_format!r}")
    return SpeechRequest(
        input=text,
        voice=voice,
        response_format=response_format,
        instructions=instructions,
        speed=speed,
        extra=dict(extra),
    )


def speech_attempt(
    request: SpeechRequest,
    handles: Handles,
    *,
    stream: bool,
    chunk_size: int,
    timeout_s: float | None,
    proxies: Proxies | None,
    log: events.Logger,
    clock: Clock = SYSTEM,
) -> Callable[[Candidate, ProviderSpec, float], bytes | AudioStream]:
    """One attempt: the whole audio (``bytes``), or with ``stream`` an AudioStream committed to its first bytes."""

    def attempt(candidate: Candidate, spec: ProviderSpec, remaining_s: float) -> bytes | AudioStream:
        timeout = min(timeout_s or spec.timeout_s, remaining_s)
        with attempt_limit(timeout, spec.timeout_s):
            return speak(candidate, spec, timeout, remaining_s)

    def speak(candidate: Candidate, spec: ProviderSpec, timeout: float, remaining_s: float) -> bytes | AudioStream:
        adapter, transport = handles(candidate.provider)
        wanted = dataclasses.replace(request, voice=_voice(request.voice, spec))
        if isinstance(adapter, LocalSpeech):
            ends = time.monotonic() + timeout
            pcm = adapter.synthesize_until(candidate.model, wanted, lambda: time.monotonic() > ends)
            data = _encode(pcm, adapter.pcm_rate, wanted, candidate)
        else:
            native, ask = _ask(adapter, candidate, wanted)
            if stream and native:
                http = adapter.speech_request(candidate.model, ask, stream=True)
                response = transport.open_stream(
                    http, connect_timeout=min(timeout, 10.0), read_timeout=timeout, proxies=proxies
                )
                budget = _Budget(timeout, clock.now() + remaining_s, clock)
                return AudioStream.open(adapter, response, chunk_size, candidate, log, budget)
            http = adapter.speech_request(candidate.model, ask, stream=False)
            data = _audio(adapter, candidate, wanted, native, transport.send(http, timeout=timeout, proxies=proxies))
        return AudioStream.of_bytes(data, chunk_size, candidate, log) if stream else data

    return attempt


def speech_attempt_async(
    request: SpeechRequest,
    handles: AsyncHandles,
    *,
    stream: bool,
    chunk_size: int,
    timeout_s: float | None,
    proxies: Proxies | None,
    log: events.Logger,
    clock: Clock = SYSTEM,
) -> Callable[[Candidate, ProviderSpec, float], Awaitable[bytes | AsyncAudioStream]]:
    """:func:`speech_attempt` over an async transport; in-process engines run in a worker thread."""

    async def attempt(candidate: Candidate, spec: ProviderSpec, remaining_s: float) -> bytes | AsyncAudioStream:
        timeout = min(timeout_s or spec.timeout_s, remaining_s)
        with attempt_limit(timeout, spec.timeout_s):
            return await speak(candidate, spec, timeout, remaining_s)

    async def speak(
        candidate: Candidate, spec: ProviderSpec, timeout: float, remaining_s: float
    ) -> bytes | AsyncAudioStream:
        adapter, transport = handles(candidate.provider)
        wanted = dataclasses.replace(request, voice=_voice(request.voice, spec))
        if isinstance(adapter, LocalSpeech):
            local, ends, cancelled = adapter, time.monotonic() + timeout, threading.Event()

            def synthesize() -> bytes:
                pcm = local.synthesize_until(
                    candidate.model, wanted, lambda: cancelled.is_set() or time.monotonic() > ends
                )
                return _encode(pcm, local.pcm_rate, wanted, candidate)

            try:
                data = await _to_thread(synthesize)
            finally:
                cancelled.set()  # this task was cancelled (the caller left): the worker thread stops too
        else:
            native, ask = _ask(adapter, candidate, wanted)
            if stream and native:
                http = adapter.speech_request(candidate.model, ask, stream=True)
                response = await transport.open_stream(
                    http, connect_timeout=min(timeout, 10.0), read_timeout=timeout, proxies=proxies
                )
                budget = _Budget(timeout, clock.now() + remaining_s, clock)
                return await AsyncAudioStream.open(adapter, response, chunk_size, candidate, log, budget)
            http = adapter.speech_request(candidate.model, ask, stream=False)
            whole = await transport.send(http, timeout=timeout, proxies=proxies)
            data = _audio(adapter, candidate, wanted, native, whole)
        return AsyncAudioStream.of_bytes(data, chunk_size, candidate, log) if stream else data

    return attempt


def save(data: bytes, response_format: str, output_dir: Path | None) -> str:
    """Write audio to ``output_dir`` (else ``<tmp>/router``) as ``speech-<id>.<format>``; the file's path."""
    folder = output_dir or Path(tempfile.gettempdir()) / "router"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"speech-{uuid.uuid4().hex[:12]}.{response_format}"
    path.write_bytes(data)
    return str(path)


def _voice(requested: str | None, spec: ProviderSpec) -> str | None:
    if requested is not None and (not spec.voices or requested in spec.voices):
        return requested
    return spec.voices[0] if spec.voices else None


def _ask(adapter: Adapter, candidate: Candidate, request: SpeechRequest) -> tuple[bool, SpeechRequest]:
    """(whether the provider makes the format itself, the request to send it: the format, or PCM to convert)."""
    if request.response_format in adapter.speech_formats:
        return True, request
    if "pcm" not in adapter.speech_formats:
        raise BadRequestError(f"{candidate.provider} cannot produce {request.response_format} audio")
    return False, dataclasses.replace(request, response_format="pcm")


def _audio(
    adapter: Adapter, candidate: Candidate, request: SpeechRequest, native: bool, response: HttpResponse
) -> bytes:
    """A whole speech response -> the audio in the requested format, or its ProviderError."""
    if response.status >= 400:
        raise adapter.parse_error(response.status, response.body, response.headers)
    if native:
        if not response.body:
            raise SpeechNotGeneratedError("the provider returned no audio")
        return response.body
    return _encode(response.body, adapter.pcm_rate, request, candidate)


def _encode(pcm: bytes, rate: int, request: SpeechRequest, candidate: Candidate) -> bytes:
    if not pcm:
        raise SpeechNotGeneratedError("the provider returned no audio")
    try:
        return audio.encode(pcm, rate, request.response_format)
    except audio.UnsupportedFormatError as exc:
        raise BadRequestError(f"{candidate.provider}: {exc}") from None


def _first_or_raise(first: bytes) -> bytes:
    if not first:
        raise SpeechNotGeneratedError("the provider returned no audio")
    return first


@dataclasses.dataclass(frozen=True, slots=True)
class _Budget:
    """A committed audio stream's limits: each read waits at most ``read_timeout_s``, never past ``ends``."""

    read_timeout_s: float
    ends: float
    clock: Clock

    def next_read(self) -> float:
        left = self.ends - self.clock.now()
        if left <= 0:
            raise ProviderTimeoutError("the request's deadline passed mid-stream")
        return min(self.read_timeout_s, left)


R = TypeVar("R", StreamResponse, AsyncStreamResponse)
Rest = TypeVar("Rest", Iterator[bytes], AsyncIterator[bytes])


class _Audio(Generic[R, Rest]):
    """What both audio streams hold and decide: the first bytes (the commit), the rest, each read's budget,
    and what a break after the commit becomes."""

    def __init__(
        self,
        first: bytes,
        rest: Rest,
        candidate: Candidate,
        log: events.Logger,
        *,
        response: R | None = None,
        budget: _Budget | None = None,
    ) -> None:
        self.provider, self.model = candidate.provider, candidate.model
        self._first: bytes | None = first
        self._rest: Rest = rest
        self._log = log
        self._response: R | None = response
        self._budget = budget
        self._delivered = 0

    def _take_first(self) -> bytes | None:
        first, self._first = self._first, None
        return first

    def _sent(self) -> None:
        """One chunk reached the caller: the next read may wait at most what the budget allows."""
        self._delivered += 1
        if self._budget is not None and self._response is not None:
            self._response.set_read_timeout(self._budget.next_read())

    def _broke(self, exc: ProviderError) -> Exception:
        return interrupted(self._log, self.provider, self.model, exc, self._delivered, what="audio stream")


class AudioStream(_Audio[StreamResponse, Iterator[bytes]]):
    """Audio bytes as they arrive, after the first ones: iterate it; ``close()`` (or ``with``) stops early."""

    @classmethod
    def open(  # noqa: PLR0917 - the attempt's own values, passed straight through
        cls,
        adapter: Adapter,
        response: StreamResponse,
        chunk_size: int,
        candidate: Candidate,
        log: events.Logger,
        budget: _Budget | None = None,
    ) -> AudioStream:
        """Read a streaming response up to its first audio bytes (the commit), or raise its ProviderError."""
        try:
            if response.status >= 400:
                raise adapter.parse_error(response.status, response.read(), response.headers)
            reads = response.chunks(chunk_size)
            first = _first_or_raise(next((chunk for chunk in reads if chunk), b""))
            return cls(first, reads, candidate, log, response=response, budget=budget)
        except BaseException:
            response.close()
            raise

    @classmethod
    def of_bytes(cls, data: bytes, chunk_size: int, candidate: Candidate, log: events.Logger) -> AudioStream:
        """A stream over audio that already exists whole (converted, or made in-process)."""
        pieces = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
        return cls(pieces[0], iter(pieces[1:]), candidate, log)

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in itertools.chain((self._take_first() or b"",), self._rest):
                if chunk:
                    yield chunk
                    self._sent()
        except ProviderError as exc:
            raise self._broke(exc) from exc
        finally:
            self.close()

    def close(self) -> None:
        """Release the upstream connection."""
        if self._response is not None:
            self._response.close()
            self._response = None

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


class AsyncAudioStream(_Audio[AsyncStreamResponse, AsyncIterator[bytes]]):
    """:class:`AudioStream` for ``async for``; ``await close()`` (or ``async with``) stops early."""

    @classmethod
    async def open(  # noqa: PLR0917 - the attempt's own values, passed straight through
        cls,
        adapter: Adapter,
        response: AsyncStreamResponse,
        chunk_size: int,
        candidate: Candidate,
        log: events.Logger,
        budget: _Budget | None = None,
    ) -> AsyncAudioStream:
        """Read a streaming response up to its first audio bytes (the commit), or raise its ProviderError."""
        try:
            if response.status >= 400:
                raise adapter.parse_error(response.status, await response.read(), response.headers)
            reads = response.chunks(chunk_size)
            first = b""
            async for chunk in reads:
                if chunk:
                    first = chunk
                    break
            return cls(_first_or_raise(first), reads, candidate, log, response=response, budget=budget)
        except BaseException:
            await response.close()
            raise

    @classmethod
    def of_bytes(cls, data: bytes, chunk_size: int, candidate: Candidate, log: events.Logger) -> AsyncAudioStream:
        """A stream over audio that already exists whole."""
        pieces = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]

        async def rest() -> AsyncIterator[bytes]:
            for piece in pieces[1:]:
                yield piece

        return cls(pieces[0], rest(), candidate, log)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            if first := self._take_first():
                yield first
                self._sent()
            async for chunk in self._rest:
                if chunk:
                    yield chunk
                    self._sent()
        except ProviderError as exc:
            raise self._broke(exc) from exc
        finally:
            await self.close()

    async def close(self) -> None:
        """Release the upstream connection."""
        if self._response is not None:
            response, self._response = self._response, None
            await response.close()

    async def __aenter__(self) -> AsyncAudioStream:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()


async def _to_thread(work: Callable[[], bytes]) -> bytes:
    """``asyncio.to_thread``; asyncio is imported here, where a coroutine already runs, not by ``import router``."""
    import asyncio  # noqa: PLC0415

    return await asyncio.to_thread(work)
