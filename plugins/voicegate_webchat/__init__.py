"""The web chat channel: a WebSocket endpoint and a small page a person can chat with.

The page (``page.html``, ``chat.js``, ``chat.css``, shipped as package data) is served at
``/channels/webchat/``; the wire protocol is described in ``docs/webchat.md``.
"""
