"""Discord without Discord: the real StickerClient and StickerCog fed raw gateway payloads through
discord.py's own parsers (what its gateway does with each event), with a fake Discord HTTP API that
records every call and answers as Discord would."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import discord
from discord.http import Route
from discord.webhook.async_ import AsyncWebhookAdapter

from adapters.discord.app import StickerClient
from bot.chat import Button
from bot.chat_commands import StickerBot
from bot.identity import Platform
from chat_drivers import CHAT, USERS
from memory_platform import Sent

TOKEN = "fake-discord-token"
APPLICATION_ID = 990000000000000001
BOT_USER = {"id": str(APPLICATION_ID), "username": "pmg", "discriminator": "0", "avatar": None, "bot": True}
GUILD_ID = 980000000000000001
CHANNEL = {"id": CHAT, "type": 0, "guild_id": str(GUILD_ID), "name": "general", "position": 0}
ATTACHMENT_LIMIT = 25 * 1024 * 1024
SETTLE_TIMEOUT_S = 30.0
RESPONSE_WINDOW = timedelta(seconds=3)  # Discord forgets an interaction not answered in time
GUILD = {
    "id": str(GUILD_ID),
    "name": "pmg test guild",
    "owner_id": "1",
    "channels": [CHANNEL],
    "roles": [],
    "members": [],
    "emojis": [],
    "stickers": [],
    "member_count": 4,
    "features": [],
    "unavailable": False,
}


@dataclass
class Call:
    """One request discord.py made: the route template (as discord.py names it), the URL, the JSON
    payload, the uploaded files (name -> bytes), and what the fake answered."""

    method: str
    path: str
    url: str
    payload: Any = None
    files: dict[str, bytes] = field(default_factory=dict)
    answer: Any = None
    shown_flags: int | None = None  # a follow-up's flags as users see them (see FakeDiscordApi.loading)


def snowflakes() -> itertools.count[int]:
    """Ids that encode the current time, as Discord's do (an interaction's token expires 15 min after its id)."""
    return itertools.count(discord.utils.time_snowflake(datetime.now(UTC)))


def http_error(status: int, message: str) -> discord.HTTPException:
    """The exception discord.py raises for such an answer (404 -> NotFound, ...)."""
    response = SimpleNamespace(status=status, reason=message)
    kind = {403: discord.Forbidden, 404: discord.NotFound}.get(status, discord.HTTPException)
    return kind(response, {"code": 0, "message": message})  # type: ignore[arg-type]


class FakeDiscordApi:
    """The one stand-in of these tests: Discord's HTTP side (REST, interaction webhooks, the CDN),
    because there is no Discord here. discord.py builds each request as usual (route, JSON, files);
    where it would hand them to aiohttp (HTTPClient.request, HTTPClient.get_from_cdn,
    AsyncWebhookAdapter.request) this object records them and answers with Discord's JSON instead.
    Everything above that layer, discord.py's parsing, command tree and dispatch included, is real."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.assets: dict[str, bytes] = {}  # CDN URL -> bytes; any other URL is a 404
        self.failures: dict[str, int] = {}  # "METHOD path-template" -> HTTP status to answer instead
        self.acknowledged: set[str] = set()  # tokens of the interactions responded to
        # Deferred responses still showing "thinking…", by token, with the deferral's flags: Discord
        # turns the first follow-up into that message, with those flags, whatever the follow-up asks.
        self.loading: dict[str, int] = {}
        self._ids = snowflakes()

    @contextmanager
    def serving(self, client: discord.Client) -> Iterator[None]:
        """Answer this client's REST and CDN requests and (while the block lasts) every interaction
        response and follow-up, which discord.py sends through a process-wide webhook adapter."""
        client.http.request = self.rest  # type: ignore[method-assign]
        client.http.get_from_cdn = self.cdn  # type: ignore[method-assign]
        api = self

        async def webhook_request(
            adapter: AsyncWebhookAdapter, route: Route, session: Any, **kwargs: Any
        ) -> Any:
            return api.answer(route, kwargs.get("payload"), kwargs.get("multipart"), kwargs.get("files"))

        with patch.object(AsyncWebhookAdapter, "request", webhook_request):
            yield

    async def rest(self, route: Route, **kwargs: Any) -> Any:
        return self.answer(route, kwargs.get("json"), kwargs.get("form"), kwargs.get("files"))

    async def cdn(self, url: str) -> bytes:
        self.calls.append(Call("GET", "cdn", url))
        if url not in self.assets:
            raise http_error(404, "asset not found")
        return self.assets[url]

    def answer(self, route: Route, payload: Any, form: Any, files: Any) -> Any:
        uploads = {}
        if form and not any(part["name"] == "payload_json" for part in form):  # a guild sticker's fields
            payload = {part["name"]: part["value"] for part in form if part["name"] != "file"}
        elif form:  # multipart: the JSON travels as the payload_json field beside the files
            payload = json.loads(next(part["value"] for part in form if part["name"] == "payload_json"))
        for file in files or []:
            file.reset()
            uploads[file.filename] = file.fp.read()
        call = Call(route.method, route.path, route.url, payload, uploads)
        self.calls.append(call)
        status = self.failures.get(f"{route.method} {route.path}")
        if status is not None:
            raise http_error(status, "failure asked for by the test")
        self._check_interaction_rules(route)
        call.answer = self._respond(route, payload or {}, uploads)
        return call.answer

    def _check_interaction_rules(self, route: Route) -> None:
        """Discord's: one response per interaction, within 3 s of it; follow-ups only after that."""
        if route.path == "/interactions/{webhook_id}/{webhook_token}/callback":
            if route.webhook_token in self.acknowledged:
                raise http_error(400, "Interaction has already been acknowledged")
            if (
                discord.utils.utcnow() - discord.utils.snowflake_time(int(route.webhook_id or 0))
                > RESPONSE_WINDOW
            ):
                raise http_error(404, "Unknown interaction")
            self.acknowledged.add(str(route.webhook_token))
        elif route.path.startswith("/webhooks/{webhook_id}/{webhook_token}") and (
            route.webhook_token not in self.acknowledged
        ):
            raise http_error(404, "Unknown Webhook")

    def _respond(self, route: Route, payload: dict[str, Any], uploads: dict[str, bytes]) -> Any:
        match route.method, route.path:
            case "GET", "/users/@me":
                return BOT_USER
            case "GET", "/oauth2/applications/@me":
                return {
                    "id": str(APPLICATION_ID),
                    "name": "pmg-stickers",
                    "description": "",
                    "icon": None,
                    "bot_public": False,
                    "bot_require_code_grant": False,
                    "owner": {"id": "1", "username": "root", "discriminator": "0", "avatar": None},
                    "verify_key": "0" * 64,
                    "flags": 1 << 19,  # GATEWAY_MESSAGE_CONTENT_LIMITED: the intent is enabled
                }
            case "POST", "/interactions/{webhook_id}/{webhook_token}/callback":
                if payload["type"] == 5:
                    self.loading[str(route.webhook_token)] = payload.get("data", {}).get("flags", 0)
                interaction = {"id": str(route.webhook_id), "type": 2, "response_message_loading": True}
                return {"interaction": interaction, "resource": {"type": payload["type"]}}
            case "POST", "/webhooks/{webhook_id}/{webhook_token}":
                flags = self.loading.pop(str(route.webhook_token), payload.get("flags", 0))
                self.calls[-1].shown_flags = flags
                return self.message(payload | {"flags": flags}, uploads)
            case "PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original":
                self.loading.pop(str(route.webhook_token), None)
                return self.message(payload, uploads) | {
                    "edited_timestamp": discord.utils.utcnow().isoformat()
                }
            case "DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/@original":
                self.loading.pop(str(route.webhook_token), None)
                return None
            case "POST", "/guilds/{guild_id}/stickers":
                return {
                    "id": str(next(self._ids)),
                    "name": payload["name"],
                    "description": payload.get("description", ""),
                    "tags": payload["tags"],
                    "type": 2,
                    "format_type": 1,
                    "available": True,
                    "guild_id": str(route.guild_id),
                }
            case "POST", "/users/@me/channels":  # opening a DM
                recipient = {"id": str(payload["recipient_id"]), "username": "user", "discriminator": "0"}
                return {"id": str(next(self._ids)), "type": 1, "recipients": [recipient | {"avatar": None}]}
            case "POST", "/channels/{channel_id}/messages":
                return self.message(payload, uploads) | {"channel_id": str(route.channel_id)}
            case (
                "PUT",
                "/applications/{application_id}/guilds/{guild_id}/commands"
                | "/applications/{application_id}/commands",
            ):
                guild = {"guild_id": str(route.guild_id)} if route.guild_id else {}
                return [
                    command
                    | guild
                    | {"id": str(next(self._ids)), "application_id": str(APPLICATION_ID), "version": "1"}
                    for command in payload
                ]
        raise AssertionError(f"the fake Discord has no answer for {route.method} {route.path}")

    def message(self, payload: dict[str, Any], uploads: dict[str, bytes]) -> dict[str, Any]:
        """A message the bot sent, as Discord returns it."""
        attachments = [
            {
                "id": str(next(self._ids)),
                "filename": name,
                "size": len(data),
                "url": f"https://cdn.discordapp.com/attachments/{CHAT}/{name}",
                "proxy_url": f"https://media.discordapp.net/attachments/{CHAT}/{name}",
            }
            for name, data in uploads.items()
        ]
        return message_payload(
            next(self._ids),
            BOT_USER,
            payload.get("content") or "",
            attachments=attachments,
            components=payload.get("components", []),
            flags=payload.get("flags", 0),
        )


def user_payload(user: str) -> dict[str, Any]:
    return {
        "id": str(USERS[user]),
        "username": user,
        "discriminator": "0",
        "global_name": user.title(),
        "avatar": None,
    }


def member_payload(user: str) -> dict[str, Any]:
    return {
        "user": user_payload(user),
        "roles": [],
        "joined_at": "2024-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "flags": 0,
        "permissions": "0",
    }


def message_payload(
    message_id: int, author: dict[str, Any], content: str, *, edited: bool = False, **extra: Any
) -> dict[str, Any]:
    return {
        "id": str(message_id),
        "channel_id": CHAT,
        "guild_id": str(GUILD_ID),
        "author": author,
        "content": content,
        "timestamp": discord.utils.utcnow().isoformat(),
        "edited_timestamp": discord.utils.utcnow().isoformat() if edited else None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
    } | extra


class DiscordDriver:
    """The contract's ChatDriver on Discord: a user's message, slash command, button press, edit or
    delete as a gateway event; what the bot sent, read back from the fake API's calls."""

    platform = Platform.DISCORD
    sticker_format = "PNG"
    can_delete = True

    def __init__(self, client: StickerClient, api: FakeDiscordApi) -> None:
        self.client = client
        self.api = api
        self.errors: list[logging.LogRecord] = []  # logged while it ran; a test that expects one clears them
        self.expression_managers: set[str] = set()  # users who may manage the server's stickers (and the bot)
        self._ids = snowflakes()
        self._background = set(asyncio.all_tasks())  # the sticker service's own, running for the whole test

    @property
    def sent(self) -> list[Sent]:
        """Follow-ups and direct answers as text, sticker (a PNG attachment) or file; edits of the deferred
        response as progress. Deferrals and deletions show nothing."""
        sent = []
        for call in self.api.calls:
            if call.path.endswith("/callback") and call.payload["type"] == 4:  # answered without deferring
                sent.append(_as_sent(call.payload["data"], call.files))
            elif call.method == "POST" and call.path == "/webhooks/{webhook_id}/{webhook_token}":
                sent.append(_as_sent(call.payload, call.files))
            elif call.method == "PATCH" and call.path.startswith("/webhooks/"):
                sent.append(Sent("progress", CHAT, call.payload.get("content") or ""))
            elif call.method == "POST" and call.path == "/channels/{channel_id}/messages":
                sent.append(_as_sent(call.payload, call.files, chat=call.answer["channel_id"]))
        return sent

    async def say(
        self, user: str, text: str, *, sticker: str | None = None, message_id: int, **extra: Any
    ) -> None:
        """A message; `sticker` is a unicode emoji in it (Discord's own stickers carry no emoji)."""
        content = f"{text} {sticker}" if sticker else text
        await self.deliver("MESSAGE_CREATE", self.message(user, message_id, content, **extra))

    async def command(self, user: str, name: str, argument: str = "") -> None:
        options = [{"name": "text", "type": 3, "value": argument}] if argument else []
        data = {"id": str(next(self._ids)), "name": name, "type": 1, "options": options}
        await self.deliver("INTERACTION_CREATE", self.interaction_payload(user, 2, data))

    async def press(self, user: str, action: str) -> None:
        """Press the newest button with this action, on the message that carries it."""
        custom_id = "pmg:" + action
        carrier = next(
            call.answer
            for call in reversed(self.api.calls)
            if isinstance(call.answer, dict) and custom_id in json.dumps(call.answer.get("components", []))
        )
        data = {"custom_id": custom_id, "component_type": 2}
        await self.deliver("INTERACTION_CREATE", self.interaction_payload(user, 3, data, message=carrier))

    async def edit(self, user: str, message_id: int, text: str) -> None:
        await self.deliver("MESSAGE_UPDATE", self.message(user, message_id, text, edited=True))

    async def delete(self, user: str, message_id: int) -> None:
        await self.deliver(
            "MESSAGE_DELETE", {"id": str(message_id), "channel_id": CHAT, "guild_id": str(GUILD_ID)}
        )

    async def deliver(self, event: str, payload: dict[str, Any]) -> None:
        """What discord.py's gateway does with a DISPATCH event; returns once every task it started is done."""
        self.client._connection.parsers[event](payload)
        deadline = asyncio.get_running_loop().time() + SETTLE_TIMEOUT_S
        while pending := self._pending():
            timeout = deadline - asyncio.get_running_loop().time()
            await asyncio.wait(pending, timeout=max(timeout, 0))
            if timeout <= 0:
                raise AssertionError(f"{event} still running after {SETTLE_TIMEOUT_S} s: {pending}")

    def _pending(self) -> list[asyncio.Task[Any]]:
        current = asyncio.current_task()
        return [
            t for t in asyncio.all_tasks() if t not in self._background and t is not current and not t.done()
        ]

    def message(
        self, user: str, message_id: int, content: str, *, edited: bool = False, **extra: Any
    ) -> dict[str, Any]:
        """A user's message in the contract's channel, as MESSAGE_CREATE (and MESSAGE_UPDATE) carry it."""
        author, member = user_payload(user), member_payload(user)
        return message_payload(message_id, author, content, edited=edited, member=member) | extra

    def _permissions(self, who: str) -> str:
        allowed = discord.Permissions(manage_expressions=who in self.expression_managers)
        return str(allowed.value)

    def interaction_payload(self, user: str, kind: int, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """INTERACTION_CREATE: kind 2 is a slash command, 3 a pressed button."""
        interaction_id = next(self._ids)
        return {
            "id": str(interaction_id),
            "application_id": str(APPLICATION_ID),
            "type": kind,
            "token": f"interaction-token-{interaction_id}",
            "version": 1,
            "guild_id": str(GUILD_ID),
            "channel_id": CHAT,
            "channel": CHANNEL,
            "member": member_payload(user) | {"permissions": self._permissions(user)},
            "data": data,
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": self._permissions("bot"),
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)},
            "context": 0,
            "attachment_size_limit": ATTACHMENT_LIMIT,
        } | extra


def _as_sent(message: dict[str, Any], files: dict[str, bytes], chat: str = CHAT) -> Sent:
    buttons = [
        Button(button["label"], button["custom_id"].removeprefix("pmg:"))
        for row in message.get("components", [])
        for button in row["components"]
    ]
    for name, data in files.items():
        kinds = {"sticker.png": "sticker", "candidates.png": "image"}
        return Sent(kinds.get(name, "file"), chat, message.get("content") or name, buttons, data)
    return Sent("text", chat, message.get("content") or "", buttons)


@asynccontextmanager
async def discord_driver(bot: StickerBot) -> AsyncIterator[DiscordDriver]:
    """The real client, logged in against the fake API, in one guild whose text channel is the contract's chat."""
    api = FakeDiscordApi()
    async with StickerClient(bot) as client:
        with api.serving(client):
            await client.login(TOKEN)
            await refuse_network(client)
            client._connection.parsers["GUILD_CREATE"](GUILD)
            driver = DiscordDriver(client, api)
            with capture_errors(driver.errors):
                yield driver
    assert not driver.errors, f"errors were logged: {[record.getMessage() for record in driver.errors]}"


@contextmanager
def capture_errors(records: list[logging.LogRecord]) -> Iterator[None]:
    """Errors logged anywhere (a listener that raised, a task's lost exception) land in `records`."""
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)


class NoNetwork:
    """In place of discord.py's aiohttp session: a request the fake API did not take fails the test
    instead of going out to discord.com."""

    async def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"discord.py tried to reach the network (session.{name})")


async def refuse_network(client: discord.Client) -> None:
    session = client.http._HTTPClient__session  # type: ignore[attr-defined]
    await session.close()
    client.http._HTTPClient__session = NoNetwork()  # type: ignore[attr-defined]
