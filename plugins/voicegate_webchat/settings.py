"""Settings of the web chat channel (``channels.webchat`` in the gateway YAML)."""

from __future__ import annotations

from pydantic import Field

from gateway.components import PluginSettings


class WebChatSettings(PluginSettings):
    # Shown in the page's header and the browser tab.
    title: str = Field(default="VoiceGate", min_length=1, max_length=80)
    # Largest file or voice note a customer may send (bytes, decoded). The page checks it
    # before uploading and the server again; a larger one gets a clear message.
    max_upload_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_text_chars: int = Field(default=2000, ge=1)
    # Recording stops by itself after this many seconds.
    max_recording_s: int = Field(default=60, ge=3, le=600)
    # Origins (scheme://host[:port]) allowed to open the WebSocket besides the gateway's own
    # (e.g. a site embedding the chat). Browsers send Origin; other clients are not restricted.
    allowed_origins: tuple[str, ...] = ()
    # Messages for a customer with no open page (an agent answered after they left) wait, this
    # many per customer, until the page reconnects: in memory with one instance (a restart loses
    # them; they stay in the conversation history), in the database with coordination.redis_url.
    pending_per_session: int = Field(default=50, ge=0)
    # ... and are dropped when the customer has not come back within this many seconds.
    pending_ttl_s: float = Field(default=24 * 3600.0, gt=0)
    # WebSocket ping interval (seconds): keeps proxies from closing idle chats.
    heartbeat_s: float = Field(default=25.0, gt=0)
