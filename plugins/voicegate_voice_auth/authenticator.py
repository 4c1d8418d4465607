"""The conversation: consent -> enrolment -> verification -> verified, retry, or locked and handed to an agent.

Nothing lives in process memory between messages: the phase and the current challenge are in ``AuthStep.state``
(persisted by the core in the conversation), pending notes and voiceprints in the encrypted vault, failure counts
and locks in :mod:`.storage`. So any gateway instance can take the next message of any conversation.

Heavy work is one job per note (:mod:`.note_jobs`): decode once, gate and embed, check the words with
:class:`.content.ContentChecker` on the same samples; it runs in :class:`voiceprints.AsyncEngine`'s bounded pool, or on
voice workers through Redis (:mod:`.remote`). The event loop only waits. Enrolment and scoring are arithmetic on
embeddings and stay here.
"""

from __future__ import annotations

import logging
import math
import random
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

from gateway.components import AuthSession, AuthStatus, AuthStep
from gateway.messages import Button, InboundMessage, OutboundMessage

from voicegate_voice_auth import texts
from voicegate_voice_auth.content import ContentChecker, digit_words, new_challenge, phrase_words, show_digits
from voicegate_voice_auth.note_jobs import LocalNotes, NoteChecker, NoteJob
from voicegate_voice_auth.settings import VoiceAuthSettings
from voicegate_voice_auth.storage import AuditDecision, AuthStore, score_band

log = logging.getLogger(__name__)

ACCEPT_PAYLOAD = "voice_consent_accept"
DECLINE_PAYLOAD = "voice_consent_decline"
# Asking for an agent: these words anywhere in the text; the vaguer ones only as the whole message.
AGENT_WORDS = frozenset({"agent", "agents", "operator", "operators", "operatore", "operatori", "operatrice"})
AGENT_ALONE = frozenset({"human", "persona"})


class VoiceAuthenticator:
    """Verifies customers by voice note (see the module docstring for the flow)."""

    def __init__(self, settings: VoiceAuthSettings, *, engine: Any, vault: Any, store: AuthStore,
                 content: ContentChecker | None, clock: Callable[[], datetime], name: str = "voice",
                 notes: NoteChecker | None = None) -> None:
        self.name = name
        self.settings = settings
        self.engine = engine  # voiceprints.AsyncEngine: enrolment and scoring (and note jobs, unless `notes` says)
        self.notes: NoteChecker = notes or LocalNotes(engine, content)
        self.vault = vault  # voiceprints.Vault
        self.store = store
        self.content = content
        self.clock = clock
        self.max_audio_bytes = 10_000_000
        # Where digit challenges come from: None = the OS's cryptographic randomness (always, in production). Tests
        # set a seeded random.Random so that a run's prompts, and so the notes they assemble, are reproducible.
        self.challenge_rng: random.Random | None = None

    # ----------------------------------------------------------------------------------------------- protocol
    async def start(self, session: AuthSession) -> AuthStep:
        lang = session.language
        now = self.clock()
        if (await self.store.state(session.customer_id, now)).locked(now):
            await self._audit(session, "verify", AuditDecision.LOCKED, "locked")
            return self._locked(lang, "locked_now")
        voiceprint = await self._voiceprint(session.customer_id)
        if voiceprint is not None:
            return self._prompt(lang, "verify", {"phase": "verify"})
        return self._consent(lang)

    async def handle(self, session: AuthSession, message: InboundMessage) -> AuthStep:
        lang = session.language
        phase = session.state.get("phase")
        said = (message.text or "").strip().lower().strip(".!?")
        # Deleting and cancelling first: "delete my voiceprint, I don't want an agent" must delete.
        if said and texts.asks_to_forget(said):
            await self.forget(session.customer_id)
            reply = self._with_agent(lang, texts.text(lang, "forgotten"))
            return AuthStep(AuthStatus.DECLINED, (reply,), {}, reason="customer deleted the voiceprint")
        if said in texts.CANCEL_WORDS:
            await self._audit(session, str(phase or "consent"), AuditDecision.DECLINED, "cancelled")
            reply = self._with_agent(lang, texts.text(lang, "cancelled"))
            return AuthStep(AuthStatus.DECLINED, (reply,), {}, reason="customer cancelled")
        if self._wants_agent(message):
            await self._audit(session, str(phase or "consent"), AuditDecision.DECLINED, "agent")
            return AuthStep(AuthStatus.FAILED, (OutboundMessage(text=texts.text(lang, "agent")),), {},
                            handoff=True, reason="customer asked for an agent")
        if phase == "consent":
            return await self._on_consent(session, message)
        if phase == "enrol":
            return await self._on_enrol_note(session, message)
        if phase == "verify":
            return await self._on_verify_note(session, message)
        return await self.start(session)  # no or unknown state (e.g. after a restart of an old version)

    async def forget(self, customer_id: str) -> bool:
        deleted = await self.vault.delete(customer_id)
        counters = await self.store.forget(customer_id, self.clock())
        if deleted or counters:
            await self.store.audit(customer_id=customer_id, channel="-", at=self.clock(), step="forget",
                                   decision=AuditDecision.DELETED, reason="customer_request")
        return bool(deleted or counters)

    async def purge_expired(self) -> int:
        """Delete voiceprints older than ``retention_days`` (what the consent promises) and expired replay memory
        and audio; returns how many voiceprints were deleted. Run at start-up; :meth:`_voiceprint` also refuses an
        expired one at use."""
        import sqlalchemy as sa

        from voiceprints.vault import TEMPLATES

        cutoff = self.clock().timestamp() - self.settings.retention_days * 86400.0
        table = sa.table(TEMPLATES, sa.column("customer_id"), sa.column("updated_at"))
        async with self.vault.engine.connect() as conn:
            expired = (await conn.execute(sa.select(table.c.customer_id).where(table.c.updated_at < cutoff))).scalars().all()
        for customer_id in expired:
            await self.vault.delete(customer_id)
            await self.store.audit(customer_id=customer_id, channel="-", at=self.clock(), step="forget",
                                   decision=AuditDecision.DELETED, reason="retention")
        await self.vault.purge_expired()
        return len(expired)

    async def close(self) -> None:
        await self.notes.close()
        self.engine.close()
        if self.content is not None:
            self.content.close()

    # ----------------------------------------------------------------------------------------------- consent
    def _consent(self, lang: str | None) -> AuthStep:
        s = self.settings
        body = s.consent.get(texts.language_of(lang)) or s.consent["en"]
        message = OutboundMessage(
            text=body.format(notes=s.enrol_notes, retention_days=s.retention_days),
            buttons=(Button(s.consent_accept_title, ACCEPT_PAYLOAD), Button(s.consent_decline_title, DECLINE_PAYLOAD)),
        )
        return AuthStep(AuthStatus.PENDING, (message,), {"phase": "consent"})

    async def _on_consent(self, session: AuthSession, message: InboundMessage) -> AuthStep:
        lang = session.language
        answer = (message.text or "").strip().lower().strip(".!")
        if message.button == ACCEPT_PAYLOAD or answer in texts.ACCEPT_WORDS:
            await self._audit(session, "consent", AuditDecision.ACCEPTED, "consent")
            await self.vault.clear_enrolment_notes(session.customer_id)  # an abandoned enrolment starts over
            state = {"phase": "enrol"}
            say = self._new_say(state)
            reply = texts.text(lang, "enrol_first", total=self.settings.enrol_notes, say=say)
            return AuthStep(AuthStatus.PENDING, (self._with_agent(lang, reply),), state)
        if message.button == DECLINE_PAYLOAD or answer in texts.DECLINE_WORDS:
            await self._audit(session, "consent", AuditDecision.DECLINED, "consent_declined")
            reply = self._with_agent(lang, texts.text(lang, "declined"))
            return AuthStep(AuthStatus.DECLINED, (reply,), {}, reason="consent declined")
        step = self._consent(lang)
        reminder = OutboundMessage(text=texts.text(lang, "reminder_consent"), buttons=step.messages[0].buttons)
        return AuthStep(AuthStatus.PENDING, (reminder,), step.state)

    # ----------------------------------------------------------------------------------------------- enrolment
    async def _on_enrol_note(self, session: AuthSession, message: InboundMessage) -> AuthStep:
        from voiceprints import EnrolmentRejected

        lang, customer = session.language, session.customer_id
        state = dict(session.state)
        audio = message.audio
        if audio is None or not audio.data:
            return self._reminder(lang, state)
        checked = await self._check(session, "enrol", audio.data, audio.mime, state, enrolment=True)
        if isinstance(checked, AuthStep):
            return checked
        note, content_ok = checked
        if await self.vault.is_replay(customer, note.embedding, note.audio_sha256):
            await self._audit(session, "enrol", AuditDecision.UNUSABLE, "replay")
            return self._prompt(lang, "unusable", state, reason=texts.text(lang, "replay"))
        await self._remember(customer, note, audio.data)  # even when refused below: no note is sent twice
        if not content_ok:
            await self._audit(session, "enrol", AuditDecision.UNUSABLE, "wrong_words")
            return self._prompt(lang, "unusable", state, reason=texts.text(lang, "wrong_words"))
        count = await self.vault.add_enrolment_note(customer, note)
        await self._audit(session, "enrol", AuditDecision.ACCEPTED, "note")
        need = self.settings.enrol_notes
        if count < need:
            return self._prompt(lang, "enrol_next", state, left=need - count)
        notes = await self.vault.enrolment_notes(customer)
        try:
            voiceprint = await self.engine.enrol(notes)
        except EnrolmentRejected as exc:
            index = exc.note_index if exc.note_index is not None else len(notes) - 1
            await self.vault.clear_enrolment_notes(customer)
            for i, kept in enumerate(notes):
                if i != index:
                    await self.vault.add_enrolment_note(customer, kept)
            await self._audit(session, "enrol", AuditDecision.UNUSABLE, "inconsistent")
            reason = (texts.note_problem(lang, "inconsistent", str(exc), index=index + 1)
                      if exc.note_index is not None else str(exc))
            return self._prompt(lang, "enrol_redo", state, reason=reason, index=index + 1)
        await self.vault.save(customer, voiceprint)
        await self.vault.clear_enrolment_notes(customer)
        await self._audit(session, "enrol", AuditDecision.ENROLLED, "enrolled")
        return self._prompt(lang, "enrol_done", {"phase": "verify"})

    # ----------------------------------------------------------------------------------------------- verification
    async def _on_verify_note(self, session: AuthSession, message: InboundMessage) -> AuthStep:
        lang, customer = session.language, session.customer_id
        state = dict(session.state)
        now = self.clock()
        if (await self.store.state(customer, now)).locked(now):
            await self._audit(session, "verify", AuditDecision.LOCKED, "locked")
            return self._locked(lang, "locked_now")
        voiceprint = await self._voiceprint(customer)
        if voiceprint is None:  # deleted meanwhile (e.g. by an operator), expired, or from another model
            return self._consent(lang)
        audio = message.audio
        if audio is None or not audio.data:
            return self._reminder(lang, state)
        checked = await self._check(session, "verify", audio.data, audio.mime, state)
        if isinstance(checked, AuthStep):
            return checked
        note, content_ok = checked
        replay = await self.vault.is_replay(customer, note.embedding, note.audio_sha256)
        decision = await self.engine.verify_note(voiceprint, note)
        await self._remember(customer, note, audio.data)
        band = score_band(decision.score)
        if decision.accepted and content_ok and not replay:
            await self.store.reset(customer)
            await self._audit(session, "verify", AuditDecision.ACCEPTED, "match", band)
            return AuthStep(AuthStatus.VERIFIED, (OutboundMessage(text=texts.text(lang, "verified")),), {},
                            reason="voice verified", verified_ttl_s=self.settings.verified_ttl_s)
        # The customer hears the most telling reason: a replay, else the voice, else the words.
        code = "replay" if replay else ("no_match" if not decision.accepted else "wrong_words")
        result = await self.store.record_failure(customer, now, max_attempts=self.settings.max_attempts,
                                                 lockout_s=self.settings.lockout_s)
        if result.locked(now):
            await self._audit(session, "verify", AuditDecision.LOCKED, code, band)
            return self._locked(lang, "locked", reason=f"{code}, locked after {result.failures} failed attempts")
        await self._audit(session, "verify", AuditDecision.REJECTED, code, band)
        left = self.settings.max_attempts - result.failures
        return self._prompt(lang, "retry", state, reason=texts.text(lang, code), left=left)

    # ----------------------------------------------------------------------------------------------- helpers
    async def _check(self, session: AuthSession, step: str, data: bytes, mime: str | None,
                     state: dict[str, Any], *, enrolment: bool = False) -> tuple[Any, bool] | AuthStep:
        """Quality-gate and embed the note, and check its words; an :class:`AuthStep` when it can't be used.

        Enrolment notes also embed noisy, echoing and codec-degraded copies (about 4x the work, once per customer):
        the voiceprint then holds up on the notes customers send later from worse places."""
        from voiceprints import AudioRejected, EngineBusy, EngineTimeout

        lang = session.language
        expected = None
        if self.content is not None and texts.language_of(lang) in self.settings.content_languages:
            expected = self._expected_words(state)
        try:
            # One admitted job: the same queue limit and timeout cover the speaker and the content check, so an
            # overloaded gateway answers "busy" at once instead of queueing recogniser work without bound.
            note, content_ok = await self.notes.check(NoteJob(data=data, mime=mime, expected=expected,
                                                              enrolment=enrolment))
        except AudioRejected as exc:
            await self._audit(session, step, AuditDecision.UNUSABLE, exc.code)
            return self._prompt(lang, "unusable", state, reason=texts.note_problem(lang, exc.code, str(exc)))
        except (EngineBusy, EngineTimeout) as exc:
            log.warning("voice engine busy or slow (%s); customer %s asked to resend", exc, session.customer_id)
            await self._audit(session, step, AuditDecision.UNUSABLE, "busy")
            return self._prompt(lang, "busy", state)
        return note, content_ok

    async def _voiceprint(self, customer_id: str) -> Any:
        """The stored voiceprint, or ``None``; one that is expired, unreadable or from another model is deleted."""
        from voiceprints import ModelMismatchError, VaultError

        try:
            voiceprint = await self.vault.load(customer_id)
        except VaultError:
            log.warning("voiceprint of customer %s is unreadable; it will be enrolled again", customer_id)
            await self.vault.delete(customer_id)
            return None
        if voiceprint is None:
            return None
        try:
            voiceprint.check_model(self.engine.engine.model.model_id, self.engine.engine.model.model_revision)
        except ModelMismatchError:
            await self.vault.delete(customer_id)
            return None
        created = voiceprint.created_at if voiceprint.created_at.tzinfo else voiceprint.created_at.replace(tzinfo=timezone.utc)
        if created + timedelta(days=self.settings.retention_days) < self.clock():
            await self.vault.delete(customer_id)  # retention period over
            return None
        return voiceprint

    async def _remember(self, customer_id: str, note: Any, data: bytes) -> None:
        """Remember the note as used (replay defence) and keep the audio only when configured."""
        s = self.settings
        await self.vault.remember_used_note(customer_id, note.embedding, note.audio_sha256,
                                            ttl_s=s.replay_memory_days * 86400.0)
        if s.keep_audio:
            await self.vault.store_audio(customer_id, data, ttl_s=s.audio_retention_days * 86400.0)

    async def _audit(self, session: AuthSession, step: str, decision: AuditDecision, reason: str,
                     band: str | None = None) -> None:
        await self.store.audit(customer_id=session.customer_id, channel=session.channel, at=self.clock(),
                               step=step, decision=decision, reason=reason, band=band)
        log.info("voice auth: customer %s, %s %s (%s)", session.customer_id, step, decision.value, reason)

    def _new_say(self, state: dict[str, Any]) -> str:
        """Draw a fresh challenge into ``state`` (challenge mode) and return what to show the customer."""
        if self.settings.mode == "challenge":
            state["challenge"] = new_challenge(self.settings.challenge_digits, rng=self.challenge_rng)
        return self._say(state)

    def _say(self, state: Mapping[str, Any]) -> str:
        if self.settings.mode == "passphrase":
            return f"\"{self.settings.passphrase}\""
        return show_digits(str(state.get("challenge", "")))

    def _expected_words(self, state: Mapping[str, Any]) -> tuple[str, ...]:
        if self.settings.mode == "passphrase":
            return phrase_words(self.settings.passphrase or "")
        return digit_words(str(state["challenge"]))

    def _prompt(self, lang: str | None, key: str, state: Mapping[str, Any], **values: Any) -> AuthStep:
        """A PENDING step with a fresh challenge (every prompt gets a new one)."""
        new_state = dict(state)
        say = self._new_say(new_state)
        return AuthStep(AuthStatus.PENDING, (self._with_agent(lang, texts.text(lang, key, say=say, **values)),),
                        new_state)

    def _reminder(self, lang: str | None, state: Mapping[str, Any]) -> AuthStep:
        """No audio while a note is expected: remind, keep the same challenge, count nothing."""
        new_state = dict(state)
        if self.settings.mode == "challenge" and "challenge" not in new_state:
            new_state["challenge"] = new_challenge(self.settings.challenge_digits, rng=self.challenge_rng)
        text = texts.text(lang, "reminder_note", say=self._say(new_state))
        return AuthStep(AuthStatus.PENDING, (self._with_agent(lang, text),), new_state)

    def _locked(self, lang: str | None, key: str, reason: str = "locked") -> AuthStep:
        minutes = math.ceil(self.settings.lockout_s / 60)
        return AuthStep(AuthStatus.LOCKED, (OutboundMessage(text=texts.text(lang, key, minutes=minutes)),), {},
                        handoff=True, reason=reason)

    def _with_agent(self, lang: str | None, text: str) -> OutboundMessage:
        titles = self.settings.agent_title
        title = titles.get(texts.language_of(lang)) or titles.get("en") or "Agent"
        return OutboundMessage(text=text, buttons=(Button(title, self.settings.agent_payload),))

    def _wants_agent(self, message: InboundMessage) -> bool:
        if message.button is not None:
            return message.button == self.settings.agent_payload
        # Any wording that names an agent ("talk to an agent", "parla con un operatore"): mid-verification a customer
        # who mentions one wants one, and a channel without buttons can only type it.
        words = re.findall(r"\w+", (message.text or "").lower())
        return not AGENT_WORDS.isdisjoint(words) or (len(words) == 1 and words[0] in AGENT_ALONE)
