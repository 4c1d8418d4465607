"""The webhook signature WhatsApp uses: Meta's ``X-Hub-Signature-256`` (see :mod:`voicegate_meta.signature`)."""

from voicegate_meta.signature import HEADER, sign, signature_problem

__all__ = ["HEADER", "sign", "signature_problem"]
