"""The agents' JSON API, mounted by the app under ``/agents``.

=======  ===========================================  =================================================
method   path (under ``/agents``)                     what
=======  ===========================================  =================================================
GET      ``/me/conversations``                        conversations assigned to me, and the queue
GET      ``/conversations/{id}``                      profile, identities, context, history, events
POST     ``/conversations/{id}/messages``             ``{"text": ...}`` or ``{"template": ...}``, optional ``"buttons"``
POST     ``/conversations/{id}/claim``                take a queued conversation
POST     ``/conversations/{id}/release``              hand the conversation back to the bot
POST     ``/conversations/{id}/forget-verification``  delete the customer's verification data at their request
POST     ``/conversations/{id}/requeue``              put it back in the queue for another agent
POST     ``/conversations/{id}/close``                close it (optional ``{"reason": ...}``)
GET      ``/templates``                               reply templates and the variables they need
=======  ===========================================  =================================================

Every request identifies an agent with ``Authorization: Bearer <token>`` (the token set in
``agents.team[].token``). An agent configured without a token is identified by the header
``X-VoiceGate-Agent: <id>`` instead — for development only. Otherwise: 401. Errors are
``{"error": "<what was wrong>", "hint": "<what to do>"}`` with 400, 401, 404, 409, or 503 when the gateway
itself cannot carry the action out (e.g. the conversation's channel is not enabled here).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable

from aiohttp import web

from gateway.agent_settings import AgentProfile
from gateway.agents import AgentDesk, DeskError
from gateway.errors import GatewayError, UnknownConversation
from gateway.http_errors import error_response
from gateway.messages import Button

log = logging.getLogger(__name__)

AGENT_HEADER = "X-VoiceGate-Agent"
MAX_TEXT = 4096
MAX_BUTTONS = 10

Handler = Callable[[web.Request, AgentProfile], Awaitable[web.StreamResponse]]


# What an agent's client can do about each kind of refusal (the ``hint`` of the error body).
_HINTS = {
    400: "Fix the request as the error says and resend it",
    401: "Send Authorization: Bearer <your agents.team[].token>",
    404: "Check the conversation id; GET /agents/me/conversations lists yours and the queue",
    409: "Reload the conversation (GET /agents/conversations/{id}) and decide again",
    503: "Retry later, or ask the operator to enable the conversation's channel",
}


def _error(status: int, message: str, **headers: str) -> web.Response:
    return error_response(status, message, _HINTS.get(status, "Retry later"), headers=headers)


class _Rejected(Exception):
    def __init__(self, response: web.Response) -> None:
        self.response = response


class AgentApi:
    """aiohttp handlers over an :class:`AgentDesk`."""

    def __init__(self, desk: AgentDesk) -> None:
        self.desk = desk

    def routes(self) -> list[web.RouteDef]:
        """Routes relative to the mount point (the app mounts them under ``/agents``)."""
        return [
            web.get("/me/conversations", self._guard(self.my_conversations)),
            web.get("/conversations/{id}", self._guard(self.conversation)),
            web.post("/conversations/{id}/messages", self._guard(self.send_message)),
            web.post("/conversations/{id}/claim", self._guard(self.claim)),
            web.post("/conversations/{id}/release", self._guard(self.release)),
            web.post("/conversations/{id}/forget-verification", self._guard(self.forget_verification)),
            web.post("/conversations/{id}/requeue", self._guard(self.requeue)),
            web.post("/conversations/{id}/close", self._guard(self.close)),
            web.get("/templates", self._guard(self.templates)),
        ]

    # ------------------------------------------------------------------ plumbing

    def authenticate(self, request: web.Request) -> AgentProfile:
        """The agent making ``request``; raises a 401 response otherwise."""
        authorization = request.headers.get("Authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise _Rejected(_unauthorised("the Authorization header must be 'Bearer <token>'"))
            agent = self.desk.agent_by_token(token.strip())
            if agent is None:
                raise _Rejected(_unauthorised("the bearer token matches no agent in agents.team; check the token"))
            return agent
        agent_id = request.headers.get(AGENT_HEADER)
        if agent_id is not None:
            agent = self.desk.agents.get(agent_id)
            if agent is None:
                raise _Rejected(_unauthorised(f"no agent '{agent_id}' in agents.team"))
            if agent.token == "":  # e.g. "${VOICEGATE_AGENT_TOKEN_LUCA:-}" with the variable unset
                raise _Rejected(_unauthorised(
                    f"agent '{agent_id}' cannot sign in: their agents.team[].token is empty; the operator sets it "
                    "(usually the environment variable the YAML reads) and restarts the gateway"
                ))
            if agent.token is not None:
                raise _Rejected(_unauthorised(f"agent '{agent_id}' has a token: send 'Authorization: Bearer <token>'"))
            return agent
        raise _Rejected(
            _unauthorised(
                f"identify yourself with 'Authorization: Bearer <token>' (or '{AGENT_HEADER}: <id>' "
                "for an agent configured without a token)"
            )
        )

    def _guard(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                agent = self.authenticate(request)
                return await handler(request, agent)
            except _Rejected as rejected:
                return rejected.response
            except UnknownConversation as exc:
                return _error(404, str(exc))
            except DeskError as exc:
                return _error(exc.status, str(exc))
            except GatewayError as exc:  # e.g. the conversation's channel is not enabled on this gateway
                log.warning("agent request %s %s failed: %s", request.method, request.path, exc)
                return _error(503, f"the gateway could not carry this out: {exc}")

        wrapped.__name__ = handler.__name__
        return wrapped

    async def _json_object(self, request: web.Request, *, allowed: set[str], required: bool = True) -> dict[str, Any]:
        raw = await request.read()
        if not raw.strip():
            if required:
                raise _Rejected(_error(400, "the request body is empty; send a JSON object"))
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _Rejected(_error(400, f"the request body is not valid JSON ({exc}); send a JSON object")) from exc
        if not isinstance(data, dict):
            raise _Rejected(_error(400, f"the request body must be a JSON object, not {type(data).__name__}"))
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise _Rejected(
                _error(400, f"unknown field '{unknown[0]}'; allowed fields: {', '.join(sorted(allowed))}")
            )
        return data

    # ------------------------------------------------------------------ handlers

    async def my_conversations(self, request: web.Request, agent: AgentProfile) -> web.Response:
        mine, queue = await self.desk.desk(agent)
        return web.json_response(
            {
                "agent": {
                    "id": agent.id,
                    "name": agent.name,
                    "skills": list(agent.skills),
                    "languages": list(agent.languages),
                    "max_concurrent": agent.max_concurrent,
                },
                "assigned": [s.to_json() for s in mine],
                "queue": [s.to_json() for s in queue],
            }
        )

    async def conversation(self, request: web.Request, agent: AgentProfile) -> web.Response:
        detail = await self.desk.conversation_detail(request.match_info["id"])
        return web.json_response(detail)

    async def send_message(self, request: web.Request, agent: AgentProfile) -> web.Response:
        data = await self._json_object(request, allowed={"text", "template", "buttons"})
        text, template = data.get("text"), data.get("template")
        if (text is None) == (template is None):
            return _error(400, "send exactly one of 'text' (the message) or 'template' (a name from GET /agents/templates)")
        if text is not None and (not isinstance(text, str) or not text.strip()):
            return _error(400, "'text' must be a non-empty string")
        if text is not None and len(text) > MAX_TEXT:
            return _error(400, f"'text' is {len(text)} characters long; the limit is {MAX_TEXT}")
        if template is not None and (not isinstance(template, str) or not template):
            return _error(400, "'template' must be a template name (see GET /agents/templates)")
        buttons = _buttons(data.get("buttons", []))
        sent = await self.desk.send(agent, request.match_info["id"], text=text, template=template, buttons=buttons)
        return web.json_response(
            {
                "conversation_id": request.match_info["id"],
                "sent": {
                    "text": sent.text,
                    "buttons": [{"title": b.title, "payload": b.payload} for b in sent.buttons],
                    "template": sent.template,
                    "variables": sent.variables,
                },
            }
        )

    async def claim(self, request: web.Request, agent: AgentProfile) -> web.Response:
        conversation = await self.desk.claim(agent, request.match_info["id"])
        return web.json_response(_state(conversation))

    async def release(self, request: web.Request, agent: AgentProfile) -> web.Response:
        conversation = await self.desk.release(agent, request.match_info["id"])
        return web.json_response(_state(conversation))

    async def forget_verification(self, request: web.Request, agent: AgentProfile) -> web.Response:
        deleted = await self.desk.forget_verification(agent, request.match_info["id"])
        return web.json_response({"deleted": deleted})

    async def requeue(self, request: web.Request, agent: AgentProfile) -> web.Response:
        conversation = await self.desk.requeue(agent, request.match_info["id"])
        return web.json_response(_state(conversation))

    async def close(self, request: web.Request, agent: AgentProfile) -> web.Response:
        data = await self._json_object(request, allowed={"reason"}, required=False)
        reason = data.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
            return _error(400, "'reason' must be a string of at most 500 characters")
        conversation = await self.desk.close(agent, request.match_info["id"], reason=reason)
        return web.json_response(_state(conversation))

    async def templates(self, request: web.Request, agent: AgentProfile) -> web.Response:
        return web.json_response({"templates": self.desk.templates_json()})


def _unauthorised(message: str) -> web.Response:
    return _error(401, message, **{"WWW-Authenticate": 'Bearer realm="voicegate-agents"'})


def _buttons(raw: Any) -> tuple[Button, ...]:
    if not isinstance(raw, list):
        raise _Rejected(_error(400, "'buttons' must be a list of {\"title\": ..., \"payload\": ...} objects"))
    if len(raw) > MAX_BUTTONS:
        raise _Rejected(_error(400, f"{len(raw)} buttons given; the limit is {MAX_BUTTONS}"))
    buttons = []
    for i, item in enumerate(raw):
        if (
            not isinstance(item, dict)
            or set(item) != {"title", "payload"}
            or not all(isinstance(item[k], str) and item[k].strip() for k in ("title", "payload"))
        ):
            raise _Rejected(
                _error(400, f"buttons[{i}] must be an object with exactly a non-empty string 'title' and 'payload'")
            )
        buttons.append(Button(title=item["title"], payload=item["payload"]))
    return tuple(buttons)


def _state(conversation: Any) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "state": conversation.state.value,
        "assigned_agent": conversation.assigned_agent,
        "closed_at": conversation.closed_at.isoformat() if conversation.closed_at else None,
    }
