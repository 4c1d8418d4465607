"""docs/channels.md stays true: every setting documented, the YAML example loads; bad settings fail clearly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gateway.config_loader import load_config
from gateway.errors import ConfigError
from voicegate_messenger.settings import MessengerSettings
from voicegate_telegram.settings import TelegramSettings
from voicegate_twilio_sms.settings import TwilioSmsSettings
from voicegate_whatsapp.settings import WhatsAppSettings

DOC = Path(__file__).resolve().parents[3] / "docs" / "channels.md"
ENV = {"WHATSAPP_VERIFY_TOKEN": "verify-token-1", "WHATSAPP_APP_SECRET": "app-secret-123",
       "WHATSAPP_ACCESS_TOKEN": "EAAGm0PX4ZCps", "WHATSAPP_PHONE_NUMBER_ID": "1098765432101",
       "TELEGRAM_BOT_TOKEN": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
       "TELEGRAM_WEBHOOK_SECRET": "webhook-secret-0123", "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
       "TWILIO_AUTH_TOKEN": "twilio-token-0123456", "TWILIO_FROM_NUMBER": "+15005550006",
       "VOICEGATE_PUBLIC_URL": "https://chat.example.com", "MESSENGER_VERIFY_TOKEN": "verify-token-2",
       "MESSENGER_APP_SECRET": "app-secret-456", "MESSENGER_PAGE_ACCESS_TOKEN": "EAAPageToken1",
       "MESSENGER_PAGE_ID": "106587391234567"}


@pytest.mark.parametrize("model", [WhatsAppSettings, MessengerSettings, TelegramSettings, TwilioSmsSettings])
def test_every_setting_is_documented(model) -> None:
    text = DOC.read_text()
    for key in model.model_fields:
        assert f"| `{key}` |" in text, f"docs/channels.md does not explain {model.__name__}.{key}"


def example(tmp_path: Path) -> Path:
    block = re.search(r"## Configuration example.*?```yaml\n(.*?)```", DOC.read_text(), re.S).group(1)
    data = yaml.safe_load(block)
    data["channels"]["rest"] = {"secret": "${VOICEGATE_REST_SECRET}"}
    data["channels"]["webchat"] = {}
    data.update({"database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}"},
                 "bots": [{"use": "demo", "settings": {"flows": str(DOC.parents[1] / "config" / "flows.yaml")}}],
                 "authentication": {"use": "deny"}})
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_documented_yaml_loads_with_every_channel(tmp_path: Path) -> None:
    settings = load_config(example(tmp_path), environ={**ENV, "VOICEGATE_REST_SECRET": "rest-secret-1"})
    assert {"whatsapp", "messenger", "telegram", "sms"} <= set(settings.channels)
    assert settings.channels["telegram"]["bot_token"] == ENV["TELEGRAM_BOT_TOKEN"]


def test_bad_channel_settings_name_the_key(tmp_path: Path) -> None:
    path = example(tmp_path)
    text = path.read_text().replace("from_number: ${TWILIO_FROM_NUMBER}",
                                    "from_number: ${TWILIO_FROM_NUMBER}\n    messaging_service_sid: MG" + "2" * 32)
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={**ENV, "VOICEGATE_REST_SECRET": "rest-secret-1",
                                   "TELEGRAM_BOT_TOKEN": "not-a-token"})
    message = str(caught.value)
    assert "channels.telegram.bot_token" in message
    assert "exactly one of from_number" in message
