"""What the voice authenticator says, in English and Italian. Short: it is read on a phone.

Every prompt shows what to say as it should be said — digits as digits ("say: 4 7 2 9") — so a person can follow
it. ``{say}`` is the digits or passphrase, ``{left}`` a count.
"""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "enrol_first": "Thanks. Let's record your voiceprint: {total} short voice notes. Note 1 — say: {say}",
        "enrol_next": "Got it, {left} more — say: {say}",
        "enrol_redo": "{reason} Note {index} — say: {say}",
        "enrol_done": "Your voiceprint is saved. Now one more voice note to confirm it's you — say: {say}",
        "verify": "To continue, send a voice note — say: {say}",
        "retry": "{reason} Please try again ({left} left) — say: {say}",
        "unusable": "{reason} Say: {say}",
        "reminder_note": "Please send a voice note (hold or tap the microphone) — say: {say}. To stop, write cancel.",
        "reminder_consent": "Please choose Accept or Decline to continue.",
        "declined": "No problem. Nothing was stored. An agent can help you with this instead.",
        "locked": ("I couldn't verify you, so voice checks are paused for your account for {minutes} minutes. "
                   "I'm passing you to an agent here in the chat."),
        "locked_now": ("Voice checks are paused for your account after failed attempts (up to {minutes} minutes). "
                       "I'm passing you to an agent here in the chat."),
        "verified": "Thanks, it's you.",
        "busy": "Sorry, I couldn't check that note right now. Please send a new one in a moment — say: {say}",
        "agent": "Sure, I'm passing you to an agent here in the chat.",
        "no_match": "That didn't match your voiceprint.",
        "wrong_words": "I didn't hear the requested words.",
        "replay": "That recording was already used; please record a new note.",
        "reenrol": "Your voiceprint needs to be recorded again.",
        "cancelled": "OK, cancelled. Ask me again whenever you like, or talk to an agent.",
        "forgotten": "Done: no voiceprint or voice data is kept for you any more.",
    },
    "it": {
        "enrol_first": "Grazie. Registriamo la tua impronta vocale: {total} brevi messaggi vocali. Messaggio 1 — di': {say}",
        "enrol_next": "Ricevuto, ancora {left} — di': {say}",
        "enrol_redo": "{reason} Messaggio {index} — di': {say}",
        "enrol_done": "Impronta vocale salvata. Ora un ultimo vocale per confermare che sei tu — di': {say}",
        "verify": "Per continuare, invia un messaggio vocale — di': {say}",
        "retry": "{reason} Riprova (ancora {left}) — di': {say}",
        "unusable": "{reason} Di': {say}",
        "reminder_note": "Invia un messaggio vocale (tieni premuto o tocca il microfono) — di': {say}. Per uscire, scrivi annulla.",
        "reminder_consent": "Scegli Accetto o Rifiuto per continuare.",
        "declined": "Nessun problema, non ho salvato nulla. Un operatore può aiutarti.",
        "locked": ("Non sono riuscito a verificarti, quindi le verifiche vocali sono sospese per {minutes} minuti. "
                   "Ti passo a un operatore qui in chat."),
        "locked_now": ("Le verifiche vocali del tuo account sono sospese dopo alcuni tentativi falliti (fino a "
                       "{minutes} minuti). Ti passo a un operatore qui in chat."),
        "verified": "Grazie, sei tu.",
        "busy": "Non riesco a controllare il messaggio in questo momento. Mandane uno nuovo tra poco — di': {say}",
        "agent": "Certo, ti passo a un operatore qui in chat.",
        "no_match": "La voce non corrisponde alla tua impronta vocale.",
        "wrong_words": "Non ho sentito le parole richieste.",
        "replay": "Questa registrazione è già stata usata; registra un nuovo messaggio.",
        "reenrol": "La tua impronta vocale va registrata di nuovo.",
        "cancelled": "Va bene, annullato. Chiedimelo di nuovo quando vuoi, o parla con un operatore.",
        "forgotten": "Fatto: non conservo più nessuna impronta vocale né dati della tua voce.",
    },
}

ACCEPT_WORDS = frozenset({"yes", "y", "ok", "okay", "accept", "agree", "si", "sì", "accetto", "accetta", "va bene"})
DECLINE_WORDS = frozenset({"no", "n", "decline", "refuse", "rifiuto", "rifiuta", "non accetto"})
# Leave a pending verification (back to the bot) in any phase.
CANCEL_WORDS = frozenset({"cancel", "stop", "annulla", "basta", "lascia stare"})
# Asking to delete the voiceprint while a verification is pending (the bot's intent can't hear it then).
FORGET_PHRASES = (("delete", "voiceprint"), ("delete", "my", "voice"), ("forget", "my", "voice"),
                  ("cancella", "impronta"), ("elimina", "impronta"), ("cancella", "mia", "voce"))


def asks_to_forget(message: str) -> bool:
    """True for "delete my voiceprint", "cancella la mia impronta vocale" and the like."""
    words = set(message.lower().replace(".", " ").replace(",", " ").replace("!", " ").split())
    return any(all(any(w.startswith(part) for w in words) for part in phrase) for phrase in FORGET_PHRASES)


# Why a note could not be used, by voiceprints' AudioProblem code, for languages other than English (the engine's
# own English message, which carries the figures, is used for English and as the fallback).
NOTE_PROBLEMS: dict[str, dict[str, str]] = {
    "it": {
        "not_audio": "Questo file non è una registrazione vocale che riusciamo ad ascoltare. Registra un vocale qui.",
        "too_large": "Il file è troppo grande. Invia un messaggio vocale breve.",
        "too_short": "Il messaggio vocale è troppo corto. Di' tutto quello che ti chiedo, chiaramente.",
        "too_long": "Il messaggio vocale è troppo lungo. Di' solo quello che ti chiedo.",
        "silent": "Non abbiamo sentito nulla. Controlla che il microfono non sia disattivato e registra di nuovo.",
        "clipped": "La registrazione è distorta perché il volume è troppo alto. Allontana un po' il telefono e riprova.",
        "too_noisy": "C'è troppo rumore di fondo. Spostati in un posto più tranquillo e registra di nuovo.",
        "inconsistent": "Il messaggio {index} non sembra della stessa voce degli altri (un'altra persona o una "
                        "registrazione disturbata). Registralo di nuovo, con la tua voce, in un posto tranquillo.",
    },
}


def note_problem(language: str | None, code: str, english: str, **values: object) -> str:
    """What was wrong with a note, in the customer's language: ``english`` is the engine's own message."""
    found = NOTE_PROBLEMS.get(language_of(language), {}).get(code)
    return found.format(**values) if found else english


def language_of(language: str | None) -> str:
    """The customer's language if we have texts for it, else English."""
    return language if language in TEXTS else "en"


def text(language: str | None, key: str, **values: object) -> str:
    return TEXTS[language_of(language)][key].format(**values)
