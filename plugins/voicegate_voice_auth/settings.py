"""The voice authenticator's settings (``authentication.authenticators.voice`` in the gateway YAML)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, model_validator

from gateway.components import PluginSettings

DEFAULT_CONSENT = {
    "en": (
        "To do this in the chat I can check your voice instead of asking you to call. "
        "If you agree, I store a voiceprint: numbers computed from {notes} short voice notes, not the recordings. "
        "It is used only to confirm it's you before sensitive requests, kept encrypted for "
        "{retention_days} days, then deleted. You can delete it any time by writing \"delete my voiceprint\"."
    ),
    "it": (
        "Per farlo in chat posso verificare la tua voce invece di chiederti di chiamare. "
        "Se accetti, salvo un'impronta vocale: numeri calcolati da {notes} brevi messaggi vocali, non le registrazioni. "
        "Serve solo a confermare che sei tu prima delle richieste riservate, la conservo cifrata per "
        "{retention_days} giorni, poi la cancello, e puoi cancellarla quando vuoi scrivendo \"cancella la mia impronta vocale\"."
    ),
}


class VoiceAuthSettings(PluginSettings):
    """How customers enrol and verify by voice note.

    ``mode: challenge`` (default) asks for a fresh random digit string every time ("say: 4 7 2 9") and checks the
    spoken digits; ``mode: passphrase`` asks for the same ``passphrase`` every time (weaker against replay).
    """

    mode: Literal["challenge", "passphrase"] = "challenge"
    passphrase: str | None = Field(default=None, min_length=3, max_length=120)
    challenge_digits: int = Field(default=4, ge=3, le=8)
    enrol_notes: int = Field(default=3, ge=1, le=10)
    # Failed verifications (wrong voice, wrong words, replay) before the voiceprint is locked.
    max_attempts: int = Field(default=3, ge=1, le=20)
    lockout_s: int = Field(default=900, ge=1)
    # How long a verification lasts in the conversation; unset = authentication.verified_ttl_s.
    verified_ttl_s: int | None = Field(default=None, ge=1)
    # Decision threshold: from a target false-accept rate through the shipped calibration, or set directly.
    target_far: float = Field(default=0.01, gt=0, lt=1)
    threshold: float | None = None
    min_speech_s: float = Field(default=1.0, gt=0)
    # Enrolment refuses a note whose cosine with the mean of the other notes is below this (another speaker, or a
    # bad note). Measured on FSDD digit strings (one note against the mean of two others): same speaker min 0.457,
    # 5th percentile 0.528; another speaker median 0.200, 95th percentile 0.379, max 0.467.
    enrol_min_agreement: float = Field(default=0.40, ge=0, le=1)
    # Spoken-content check (challenge mode always; passphrase mode when true).
    check_content: bool = True
    content_decoys: int = Field(default=5, ge=1, le=50)
    content_near_misses: int = Field(default=0, ge=0, le=20)
    # Customer languages the recogniser can check (its model is English). Customers in other languages say the
    # digits in their own language, so for them only the voice and the replay memory are checked.
    content_languages: tuple[str, ...] = ("en",)
    # Replay defence: a note whose embedding is this close (cosine) to an already used note is a replay.
    replay_similarity: float = Field(default=0.92, gt=0, le=1)
    replay_memory_days: int = Field(default=180, ge=1)
    # Consent text per language; {notes} and {retention_days} are filled in.
    consent: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_CONSENT))
    consent_accept_title: str = Field(default="Accept / Accetto", min_length=1, max_length=40)
    consent_decline_title: str = Field(default="Decline / Rifiuto", min_length=1, max_length=40)
    retention_days: int = Field(default=365, ge=1)
    # Raw voice notes are not kept unless this is true (then encrypted, for audio_retention_days).
    keep_audio: bool = False
    audio_retention_days: int = Field(default=30, ge=1)
    # The payload of the "talk to an agent" button; pressing it while verifying hands over to an agent.
    agent_payload: str = Field(default="agent", min_length=1)
    agent_title: dict[str, str] = Field(default_factory=lambda: {"en": "Talk to an agent", "it": "Parla con un operatore"})
    # The speaker model folder (relative paths resolve against the config file's folder).
    model_dir: str = Field(default_factory=lambda: os.environ.get("VOICEGATE_MODEL_DIR", ""))
    # Vault keys: this environment variable (``KEY_ID:BASE64``, first = active) if set, else ``key_file``.
    keys_env: str = Field(default="VOICEGATE_VOICEPRINT_KEYS", min_length=1)
    key_file: str | None = None
    # Create ``key_file`` with a fresh key when it does not exist (first start of a development install).
    create_key_file: bool = False
    # The inference pool: threads, requests in flight before "busy", seconds per request.
    workers: int = Field(default=2, ge=1, le=16)
    queue_limit: int = Field(default=16, ge=1)
    timeout_s: float = Field(default=15.0, gt=0)
    # Voice workers: with a Redis URL, notes are queued there for `voicegate voice-worker` processes (on other
    # machines) instead of this process's pool; the gateway then loads no model. `queue_limit` then bounds the
    # jobs waiting in Redis, `workers` is each worker's default number of parallel jobs.
    worker_redis_url: str | None = None
    worker_queue: str = Field(default="voicegate:voice", min_length=1, max_length=100)

    @model_validator(mode="after")
    def _consistent(self) -> "VoiceAuthSettings":
        if self.mode == "passphrase" and not self.passphrase:
            raise ValueError("mode 'passphrase' needs a 'passphrase' (the phrase customers say)")
        if "en" not in self.consent:
            raise ValueError("'consent' needs an 'en' text (the fallback language)")
        for language, text in self.consent.items():
            try:
                text.format(notes=3, retention_days=1)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"consent.{language} may use only {{notes}} and {{retention_days}}: {exc}") from None
        if self.queue_limit < self.workers:
            raise ValueError("queue_limit must be at least 'workers'")
        return self
