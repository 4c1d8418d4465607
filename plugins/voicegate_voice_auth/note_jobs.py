"""One voice note's heavy work, and where it runs: the gateway's own pool, or voice workers fed through Redis.

A note job decodes the note once, quality-gates and embeds it (enrolment notes with their degraded copies), and
checks the spoken words on the same samples. :class:`LocalNotes` runs it in the gateway's
:class:`voiceprints.AsyncEngine` pool; :class:`voicegate_voice_auth.remote.RemoteNotes` queues it for
``voicegate voice-worker`` processes (other machines), so gateway instances need no model and no CPU for audio.
Both raise the same errors: ``AudioRejected`` (the note is unusable), ``EngineBusy`` / ``EngineTimeout`` (overload).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from voicegate_voice_auth.content import ContentChecker


@dataclass(frozen=True)
class NoteJob:
    """A note to check: its bytes and MIME type, the words it must say (``None``: no content check), and whether
    it is an enrolment note."""

    data: bytes
    mime: str | None
    expected: tuple[str, ...] | None
    enrolment: bool

    def __repr__(self) -> str:  # voice audio is biometric data: never in logs or tracebacks
        return f"NoteJob({len(self.data)} bytes, mime={self.mime!r}, enrolment={self.enrolment})"


def run_note_job(engine: Any, content: ContentChecker | None, job: NoteJob) -> tuple[Any, bool]:
    """Blocking (a worker thread): ``(NoteEmbedding, words_ok)`` for ``job`` on ``engine`` (a ``voiceprints.Engine``).

    Raises ``voiceprints.AudioRejected`` for an unusable note."""
    if job.expected is not None and content is None:  # never "the words are right" for want of a recogniser
        raise RuntimeError("the note's words must be checked but this process has no content checker: give the "
                           "voice workers the gateway's voice settings (mode, check_content)")
    wave = engine.decode(job.data, job.mime)
    note = engine.check_enrolment_waveform(wave) if job.enrolment else engine.check_waveform(wave)
    words_ok = True if job.expected is None else content.says(wave.samples, job.expected)  # type: ignore[union-attr]
    return note, words_ok


class NoteChecker(Protocol):
    """Runs note jobs somewhere; the authenticator does not care where."""

    async def check(self, job: NoteJob) -> tuple[Any, bool]:
        """``(NoteEmbedding, words_ok)``; raises ``AudioRejected``, ``EngineBusy`` or ``EngineTimeout``."""
        ...

    async def close(self) -> None:
        """Release the pool or connection."""
        ...


class LocalNotes:
    """Note jobs in this process, through the engine's bounded pool (one admission covers voice and words)."""

    def __init__(self, engine: Any, content: ContentChecker | None) -> None:
        self.engine = engine  # voiceprints.AsyncEngine
        self.content = content

    async def check(self, job: NoteJob) -> tuple[Any, bool]:
        return await self.engine.run(run_note_job, self.engine.engine, self.content, job)

    async def close(self) -> None:
        """Nothing of its own: the authenticator closes the engine it shares."""
