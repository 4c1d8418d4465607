"""The synchronous engine: quality-gated notes -> embeddings -> voiceprints -> decisions.

CPU-bound and blocking: call it from worker threads (:class:`voiceprints.AsyncEngine`), never from an event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np

from voiceprints.audio import TARGET_RATE, Waveform, decode_audio
from voiceprints.degrade import enrolment_variants, phone_band
from voiceprints.errors import AudioRejected, EnrolmentRejected, ModelMismatchError
from voiceprints.model import EcapaModel
from voiceprints.quality import SpeechAnalysis, analyse, gate, is_narrowband
from voiceprints.records import Decision, NoteEmbedding, Voiceprint, l2_normalise
from voiceprints.scoring import Calibration, Cohort, as_norm, cosine
from voiceprints.settings import EngineSettings, default_calibration, default_narrowband_calibration


class Engine:
    """Speaker verification on one loaded model.

    ``cohort`` (optional) enables adaptive s-norm; without it scores are plain cosine against cosine thresholds.

    >>> engine = Engine(load_ecapa(model_dir), EngineSettings())  # doctest: +SKIP
    >>> notes = [engine.check_note(data, "audio/ogg") for data in three_notes]  # doctest: +SKIP
    >>> decision = engine.verify(engine.enrol(notes), new_note)  # doctest: +SKIP
    """

    def __init__(self, model: EcapaModel, settings: EngineSettings | None = None, cohort: Cohort | None = None) -> None:
        self.model = model
        self.settings = settings or EngineSettings()
        if cohort is not None:
            cohort.check_model(model.model_id, model.model_revision)
        self.cohort = cohort
        s = self.settings
        self.calibration: Calibration = s.calibration or default_calibration(cohort is not None)
        # Narrowband-vs-narrowband cosines run higher for everyone: their own calibration, unless the caller brought
        # one calibration (or a cohort, whose AS-norm absorbs the shift) for all notes.
        self.narrowband_calibration: Calibration = s.narrowband_calibration or (
            self.calibration if s.calibration is not None or cohort is not None else default_narrowband_calibration())
        for calibration in (self.calibration, self.narrowband_calibration):
            if calibration.normalised != (cohort is not None):
                raise ValueError(
                    "The calibration was fitted on " + ("AS-norm" if calibration.normalised else "cosine")
                    + " scores but the engine " + ("has" if cohort is not None else "has no") + " cohort; "
                    "calibrate with the same cohort setting you run with."
                )
        self.threshold = s.threshold if s.threshold is not None else self.calibration.threshold_for(s.target_far)
        self.narrowband_threshold = (
            s.threshold if s.threshold is not None else self.narrowband_calibration.threshold_for(s.target_far))

    # -- notes -------------------------------------------------------------------------------------------------
    def decode(self, data: bytes, mime: str | None = None) -> Waveform:
        """Decode with this engine's size and duration limits."""
        return decode_audio(data, mime=mime, max_bytes=self.settings.max_bytes,
                            max_duration_s=self.settings.max_duration_s + 1.0)

    def _gate(self, samples: np.ndarray) -> SpeechAnalysis:
        s = self.settings
        analysis = analyse(samples, TARGET_RATE)
        gate(analysis, min_speech_s=s.min_speech_s, max_duration_s=s.max_duration_s, silence_dbfs=s.silence_dbfs,
             max_clipped_fraction=s.max_clipped_fraction, min_snr_db=s.min_snr_db)
        return analysis

    def _note(self, samples: np.ndarray, analysis: SpeechAnalysis, audio_sha256: str,
              source_rate: int | None = None) -> NoteEmbedding:
        # Embed speech only; fall back to the whole clip when the VAD kept too little to embed reliably.
        return NoteEmbedding(embedding=self.model.embed(self._speech(samples, analysis)), audio_sha256=audio_sha256,
                             speech_s=analysis.speech_s, model_id=self.model.model_id,
                             model_revision=self.model.model_revision,
                             narrowband=self.settings.narrowband and is_narrowband(analysis, TARGET_RATE, source_rate))

    def _speech(self, samples: np.ndarray, analysis: SpeechAnalysis) -> np.ndarray:
        return analysis.speech if self.settings.vad and analysis.speech_s >= 0.5 else samples

    def _embed(self, samples: np.ndarray) -> np.ndarray:
        return self.model.embed(self._speech(samples, analyse(samples, TARGET_RATE)))

    def _with_enrolment_embeddings(self, samples: np.ndarray, note: NoteEmbedding, key: str) -> NoteEmbedding:
        s = self.settings
        variants = enrolment_variants(samples, key=key) if s.enrol_augment else []
        wide = (l2_normalise(np.mean([note.embedding, *(self._embed(v) for v in variants)], axis=0))
                if s.enrol_augment else None)
        narrow = None
        if s.narrowband:
            # The same copies band-limited to 8 kHz, for notes that arrive through a phone-band channel. A note
            # that is narrowband already would give the same embeddings again: reuse them.
            narrow = ((wide if wide is not None else note.embedding) if note.narrowband else
                      l2_normalise(np.mean([self._embed(phone_band(x)) for x in (samples, *variants)], axis=0)))
        return replace(note, enrolment_embedding=wide, narrowband_embedding=narrow)

    def check_enrolment_note(self, data: bytes, mime: str | None = None) -> NoteEmbedding:
        """:meth:`check_note` for an enrolment note: also embeds augmented copies (noise at 20/10/5 dB, room echo,
        app codec) into ``enrolment_embedding``, and the same copies band-limited to 8 kHz into
        ``narrowband_embedding``; :meth:`enrol` prefers them. About 12x the work of :meth:`check_note` (6x for a
        note that is narrowband already)."""
        return self.check_enrolment_waveform(self.decode(data, mime))

    def check_enrolment_waveform(self, wave: Waveform) -> NoteEmbedding:
        """:meth:`check_enrolment_note` on decoded audio (for callers that also use the samples themselves)."""
        analysis = self._gate(wave.samples)
        digest = wave.sha256()
        note = self._note(wave.samples, analysis, digest, wave.source_rate)
        return self._with_enrolment_embeddings(wave.samples, note, digest)

    def check_waveform(self, wave: Waveform) -> NoteEmbedding:
        """Quality-gate decoded audio and embed its speech (raises :class:`AudioRejected`)."""
        return self._note(wave.samples, self._gate(wave.samples), wave.sha256(), wave.source_rate)

    def embed_samples(self, samples: np.ndarray, *, enrolment: bool = False,
                      key: str = "") -> tuple[NoteEmbedding, str | None]:
        """Embed 16 kHz samples as :meth:`check_waveform` (or, with ``enrolment``, :meth:`check_enrolment_note`)
        would, but report the gate's verdict instead of raising. For evaluation, where every clip needs a score."""
        problem = None
        try:
            analysis = self._gate(samples)
        except AudioRejected as exc:
            analysis, problem = analyse(samples, TARGET_RATE), exc.code
        note = self._note(samples, analysis, "")
        if enrolment:
            note = self._with_enrolment_embeddings(samples, note, key)
        return note, problem

    def check_note(self, data: bytes, mime: str | None = None) -> NoteEmbedding:
        """Decode, quality-gate and embed one voice note. Raises :class:`AudioRejected` with a customer-facing reason."""
        return self.check_waveform(self.decode(data, mime))

    # -- enrolment ---------------------------------------------------------------------------------------------
    def _check_models(self, *models: tuple[str, str]) -> None:
        own = (self.model.model_id, self.model.model_revision)
        for model in models:
            if model != own:
                raise ModelMismatchError(
                    f"An embedding from {model[0]}@{model[1][:8]} cannot be used with {own[0]}@{own[1][:8]}."
                )

    def enrol(self, notes: Sequence[NoteEmbedding]) -> Voiceprint:
        """Average ≥ ``enrol_notes`` checked notes into a voiceprint, refusing notes that disagree.

        Each note is compared with the mean of the *other* notes; the note that agrees least is blamed when it is
        below ``enrol_min_agreement`` (:class:`EnrolmentRejected` with ``note_index``).
        """
        need = self.settings.enrol_notes
        if len(notes) < need:
            raise EnrolmentRejected(f"Enrolment needs {need} voice notes; {len(notes)} received. Please send "
                                    f"{need - len(notes)} more.", note_index=None)
        self._check_models(*((n.model_id, n.model_revision) for n in notes))
        matrix = np.stack([l2_normalise(n.embedding) for n in notes])
        if len(notes) > 1:
            total = matrix.sum(axis=0)
            agreement = [cosine(matrix[i], total - matrix[i]) for i in range(len(notes))]
            worst = int(np.argmin(agreement))
            if agreement[worst] < self.settings.enrol_min_agreement:
                raise EnrolmentRejected(
                    f"Voice note {worst + 1} does not sound like the others (another speaker, or a poor recording). "
                    "Please record that note again, in a quiet place, in your own voice.",
                    note_index=worst,
                )
        return self.template(notes)

    def template(self, notes: Sequence[NoteEmbedding]) -> Voiceprint:
        """The length-normalised average of the notes' (unit) embeddings, without the agreement check."""
        self._check_models(*((n.model_id, n.model_revision) for n in notes))
        # Prefer the multi-condition embedding of each note when check_enrolment_note made one.
        template = l2_normalise(np.mean([l2_normalise(n.embedding if n.enrolment_embedding is None
                                                      else n.enrolment_embedding) for n in notes], axis=0))
        # A narrowband template only for a full-band enrolment (most notes full-band): a voiceprint enrolled mostly
        # from narrowband notes already is narrowband, and its scores stay where the full-band calibration measured
        # them (band-limited notes of a full-band voice are what shift impostor scores up).
        narrow = None
        if (self.settings.narrowband and all(n.narrowband_embedding is not None for n in notes)
                and 2 * sum(n.narrowband for n in notes) < len(notes)):
            narrow = l2_normalise(np.mean([l2_normalise(n.narrowband_embedding) for n in notes], axis=0))
        return Voiceprint(template=template, model_id=self.model.model_id,
                          model_revision=self.model.model_revision, notes=len(notes),
                          created_at=datetime.now(timezone.utc), narrowband_template=narrow)

    # -- verification ------------------------------------------------------------------------------------------
    def narrowband_match(self, voiceprint: Voiceprint, note: NoteEmbedding) -> bool:
        """Whether ``note`` is scored against the narrowband template (a note from an 8 kHz channel, and a voiceprint
        that has one), and so with the narrowband calibration."""
        return self.settings.narrowband and note.narrowband and voiceprint.narrowband_template is not None

    def score(self, voiceprint: Voiceprint, note: NoteEmbedding) -> tuple[float, float]:
        """(raw cosine, decision score): the decision score is AS-norm with a cohort, else the cosine.

        Both compare the note with the template of its bandwidth (:meth:`narrowband_match`)."""
        voiceprint.check_model(self.model.model_id, self.model.model_revision)
        self._check_models((note.model_id, note.model_revision))
        template = voiceprint.narrowband_template if self.narrowband_match(voiceprint, note) else voiceprint.template
        raw = cosine(template, note.embedding)
        if self.cohort is None:
            return raw, raw
        return raw, as_norm(raw, template, note.embedding, self.cohort)

    def verify_note(self, voiceprint: Voiceprint, note: NoteEmbedding) -> Decision:
        """Decide on an already checked note."""
        raw, normalised = self.score(voiceprint, note)
        narrowband = self.narrowband_match(voiceprint, note)
        calibration = self.narrowband_calibration if narrowband else self.calibration
        threshold = self.narrowband_threshold if narrowband else self.threshold
        accepted = normalised >= threshold
        if accepted:
            reason, code = "The voice matches the enrolled voiceprint.", "match"
        else:
            reason, code = "The voice does not match the enrolled voiceprint closely enough.", "no_match"
        return Decision(accepted=accepted, score=calibration.probability(normalised), raw_score=raw,
                        reason=reason, code=code, embedding=note.embedding, audio_sha256=note.audio_sha256,
                        speech_s=note.speech_s, normalised_score=normalised, threshold=threshold,
                        narrowband=narrowband)

    def verify(self, voiceprint: Voiceprint, data: bytes, mime: str | None = None) -> Decision:
        """Decode, gate and embed ``data``, then decide against ``voiceprint`` (raises :class:`AudioRejected`)."""
        voiceprint.check_model(self.model.model_id, self.model.model_revision)
        return self.verify_note(voiceprint, self.check_note(data, mime))
