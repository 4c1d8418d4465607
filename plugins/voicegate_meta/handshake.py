"""Meta's webhook subscription check (``GET`` on the callback URL), the same for WhatsApp and Messenger."""

from __future__ import annotations

import hmac

from aiohttp import web

from gateway.http_errors import error_response


def answer_subscription(request: web.Request, verify_token: str, setting: str) -> web.Response:
    """Echo ``hub.challenge`` when ``hub.mode=subscribe`` and ``hub.verify_token`` is ours.

    ``setting`` names the YAML key holding the token (``channels.whatsapp.verify_token``), for the hint.
    """
    mode = request.query.get("hub.mode")
    token = request.query.get("hub.verify_token", "")
    challenge = request.query.get("hub.challenge")
    if mode != "subscribe" or not challenge:
        return error_response(400, "expected hub.mode=subscribe and a hub.challenge",
                              "This URL is the webhook callback; Meta calls it when you save the webhook form")
    if not hmac.compare_digest(token.encode("utf-8"), verify_token.encode("utf-8")):
        return error_response(403, "hub.verify_token does not match",
                              f"Type the {setting} value into the console's 'Verify token' field")
    return web.Response(text=challenge, content_type="text/plain")
