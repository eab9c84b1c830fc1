"""The ``espeak`` adapter: eSpeak NG in-process, an offline voice that needs no key, no network and no root.

The ``espeakng-loader`` wheel ships ``libespeak-ng`` and its voice data; this module drives the library's C
API through ctypes (https://github.com/espeak-ng/espeak-ng/blob/master/src/include/espeak-ng/speak_lib.h):
``espeak_Initialize`` in synchronous mode, a synth callback that collects the 16-bit mono samples,
``espeak_SetVoiceByName``, ``espeak_SetParameter(espeakRATE)`` and ``espeak_Synth``. The engine has one
global state, so every call holds one process-wide lock. The callback is called once per buffer and
"returns: 0=continue synthesis, 1=abort synthesis" (speak_lib.h): that is how a synthesis stops at the
request's deadline or when the caller leaves, instead of running on with the lock held. Its PCM is turned
into the requested format by :mod:`router.adapters.audio`.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from router.adapters.base import LocalSpeech, SpeechRequest
from router.errors import ProviderTimeoutError, ServerError

__all__ = ["EspeakAdapter"]

_AUDIO_OUTPUT_SYNCHRONOUS = 0x02
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1
_DEFAULT_WPM = 175
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _Voice(ctypes.Structure):
    _fields_: ClassVar[list[tuple[str, Any]]] = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class _Engine:
    """The loaded library, initialised once per process; every use holds ``lock``."""

    lock = threading.Lock()
    _instance: ClassVar[_Engine | None] = None

    def __init__(self) -> None:
        import espeakng_loader  # noqa: PLC0415 - loads a shared library: only when a voice is asked for

        self.lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path().encode()
        self.rate = int(self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0))
        if self.rate <= 0:
            raise ServerError("eSpeak NG failed to initialise")
        self._samples: list[bytes] = []
        self._stop: Callable[[], bool] = _never
        self._stopped = False
        self._callback = _CALLBACK(self._collect)  # kept referenced: the library calls it later
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        self.voices = self._list_voices()

    @classmethod
    def get(cls) -> _Engine:
        with cls.lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _collect(self, wav: Any, count: int, events: Any) -> int:
        """The engine's synth callback, once per buffer (about 0.2 s of audio): 1 tells it to abort."""
        if wav and count > 0:
            self._samples.append(ctypes.string_at(wav, count * 2))
        if self._stop():
            self._stopped = True
            return 1
        return 0

    def _list_voices(self) -> list[str]:
        found, entries, i = [], self.lib.espeak_ListVoices(None), 0
        while entries[i]:
            voice = entries[i].contents
            languages = (voice.languages or b"")[1:].split(b"\0")[0].decode()
            found.append(languages or voice.identifier.decode())
            i += 1
        return found

    def synthesize(self, text: str, voice: str, words_per_minute: int, stop: Callable[[], bool]) -> bytes:
        """16-bit mono PCM of ``text``; ProviderTimeoutError as soon as ``stop()`` turns true mid-synthesis."""
        with self.lock:
            self._samples, self._stop, self._stopped = [], stop, False
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                self.lib.espeak_SetVoiceByName(b"en")
            self.lib.espeak_SetParameter(_ESPEAK_RATE, words_per_minute, 0)
            encoded = text.encode()
            status = self.lib.espeak_Synth(
                encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
            )
            self._stop = _never
            if self._stopped:
                self._samples = []
                raise ProviderTimeoutError("the synthesis was stopped: the deadline passed or the caller left")
            if status != 0:
                raise ServerError(f"eSpeak NG could not synthesise (status {status})")
            pcm, self._samples = b"".join(self._samples), []
            return pcm


class EspeakAdapter(LocalSpeech):
    """eSpeak NG: voices are language codes (``en``, ``en-us``, ``de``, ...); an unknown voice speaks ``en``."""

    name = "espeak"

    @property
    def pcm_rate(self) -> int:  # type: ignore[override]  # the engine says its rate when it starts
        return _Engine.get().rate

    def voices(self) -> list[str]:
        return list(_Engine.get().voices)

    def synthesize(self, model: str, request: SpeechRequest) -> bytes:
        return self.synthesize_until(model, request, _never)

    def synthesize_until(self, model: str, request: SpeechRequest, stop: Callable[[], bool]) -> bytes:
        speed = request.speed if request.speed is not None else 1.0
        words_per_minute = max(80, min(450, round(_DEFAULT_WPM * speed)))
        return _Engine.get().synthesize(request.input, request.voice or "en", words_per_minute, stop)


def _never() -> bool:
    return False
