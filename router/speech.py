"""The speech namespace's work between the client and the executor: the request, and one attempt at it.

An attempt makes audio in the format the caller asked for: the provider's own when it offers that format,
else PCM converted by :mod:`router.audio` (eSpeak NG always goes that way, in-process). A voice the policy
does not list for the candidate is replaced by the candidate's first listed voice, so a request can fail
over between providers whose voices have different names. No audio is a ``SpeechNotGeneratedError``
(class ``empty``) and fails over.

Streaming (``stream=True``) commits at the first bytes of audio, as chat streams commit at the first
content: failures before that fail over unseen, a failure after it raises ``StreamInterruptedError``. Audio
the provider produces natively is streamed as it arrives; converted audio is produced whole, then chunked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any

from router import audio, events
from router.adapters.base import Adapter, LocalSpeech, SpeechRequest
from router.errors import BadRequestError, ProviderError, SpeechNotGeneratedError
from router.resolver import Candidate, ProviderSpec
from router.streaming import interrupted
from router.transport import Proxies, RequestsTransport, StreamResponse

__all__ = ["AudioStream", "speech_attempt", "speech_request"]

Handles = Callable[[str], tuple[Adapter, RequestsTransport]]


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
) -> Callable[[Candidate, ProviderSpec, float], bytes | AudioStream]:
    """One attempt: the whole audio (``bytes``), or with ``stream`` an AudioStream committed to its first bytes."""

    def attempt(candidate: Candidate, spec: ProviderSpec, remaining_s: float) -> bytes | AudioStream:
        adapter, transport = handles(candidate.provider)
        wanted = dataclasses.replace(request, voice=_voice(request.voice, spec))
        timeout = min(timeout_s or spec.timeout_s, remaining_s)
        native = wanted.response_format in adapter.speech_formats and not isinstance(adapter, LocalSpeech)
        if stream and native:
            return _open_stream(
                adapter, transport, candidate, wanted, chunk_size=chunk_size, timeout=timeout, proxies=proxies, log=log
            )
        data = _whole(adapter, transport, candidate, wanted, native=native, timeout=timeout, proxies=proxies)
        if stream:
            return AudioStream.of_bytes(data, chunk_size, candidate, log)
        return data

    return attempt


def _voice(requested: str | None, spec: ProviderSpec) -> str | None:
    if requested is not None and (not spec.voices or requested in spec.voices):
        return requested
    return spec.voices[0] if spec.voices else None


def _whole(
    adapter: Adapter,
    transport: RequestsTransport,
    candidate: Candidate,
    request: SpeechRequest,
    *,
    native: bool,
    timeout: float,
    proxies: Proxies | None,
) -> bytes:
    if isinstance(adapter, LocalSpeech):
        pcm, rate = adapter.synthesize(candidate.model, request), adapter.pcm_rate
    else:
        if not native and "pcm" not in adapter.speech_formats:
            raise BadRequestError(f"{candidate.provider} cannot produce {request.response_format} audio")
        ask = request if native else dataclasses.replace(request, response_format="pcm")
        response = transport.send(
            adapter.speech_request(candidate.model, ask, stream=False), timeout=timeout, proxies=proxies
        )
        if response.status >= 400:
            raise adapter.parse_error(response.status, response.body, response.headers)
        if native:
            if not response.body:
                raise SpeechNotGeneratedError("the provider returned no audio")
            return response.body
        pcm, rate = response.body, adapter.pcm_rate
    if not pcm:
        raise SpeechNotGeneratedError("the provider returned no audio")
    try:
        return audio.encode(pcm, rate, request.response_format)
    except audio.UnsupportedFormatError as exc:
        raise BadRequestError(f"{candidate.provider}: {exc}") from None


def _open_stream(
    adapter: Adapter,
    transport: RequestsTransport,
    candidate: Candidate,
    request: SpeechRequest,
    *,
    chunk_size: int,
    timeout: float,
    proxies: Proxies | None,
    log: events.Logger,
) -> AudioStream:
    http = adapter.speech_request(candidate.model, request, stream=True)
    response = transport.open_stream(http, connect_timeout=min(timeout, 10.0), read_timeout=timeout, proxies=proxies)
    try:
        if response.status >= 400:
            raise adapter.parse_error(response.status, response.read(), response.headers)
        reads = response.chunks(chunk_size)
        first = next((chunk for chunk in reads if chunk), b"")
        if not first:
            raise SpeechNotGeneratedError("the provider returned no audio")
        return AudioStream(first, reads, candidate, log, response)
    except BaseException:
        response.close()
        raise


class AudioStream:
    """Audio bytes as they arrive, after the first ones: iterate it; ``close()`` (or ``with``) stops early."""

    def __init__(
        self,
        first: bytes,
        rest: Iterator[bytes],
        candidate: Candidate,
        log: events.Logger,
        response: StreamResponse | None = None,
    ) -> None:
        self.provider, self.model = candidate.provider, candidate.model
        self._first: bytes | None = first
        self._rest = rest
        self._log = log
        self._response = response
        self._delivered = 0

    @classmethod
    def of_bytes(cls, data: bytes, chunk_size: int, candidate: Candidate, log: events.Logger) -> AudioStream:
        """A stream over audio that already exists whole (converted, or made in-process)."""
        pieces = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
        return cls(pieces[0], iter(pieces[1:]), candidate, log)

    def __iter__(self) -> Iterator[bytes]:
        try:
            if self._first is not None:
                first, self._first = self._first, None
                self._delivered += 1
                yield first
            for chunk in self._rest:
                if chunk:
                    self._delivered += 1
                    yield chunk
        except ProviderError as exc:
            raise interrupted(self._log, self.provider, self.model, exc, self._delivered, what="audio stream") from exc
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
