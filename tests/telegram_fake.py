"""A small fake Telegram Bot API on 127.0.0.1 (there is no Telegram here): python-telegram-bot talks to
it over real HTTP. It answers getMe, getUpdates (long polling), sendMessage, sendSticker, sendPhoto, sendDocument,
editMessageText, deleteMessage, getFile and file downloads, answerCallbackQuery, and keeps sticker sets
(createNewStickerSet, addStickerToSet, deleteStickerSet, with their errors); it records every call,
can answer 429 with retry_after or fail a method outright, and refuses private messages to users who
never started the bot."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image
from telegram import Update
from telegram.ext import Application

from adapters.telegram.app import build_application
from bot.chat import Button
from bot.chat_commands import StickerBot
from bot.identity import Platform
from bot.settings import Settings
from chat_drivers import USERS
from memory_platform import Sent

TOKEN = "123456:TEST-token"
BOT_USER = {"id": 999, "is_bot": True, "first_name": "PMG", "username": "pmg_test_bot"}
GROUP = -100  # the contract's chat: a group, so private files go to the user's own chat


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    upload: bytes | None = None
    filename: str | None = None
    message_id: int | None = None  # of the message this call sent
    at: float = field(default_factory=time.monotonic)


class FakeBotApi:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.files: dict[str, bytes] = {}  # file_id -> bytes a user's sticker has
        self.started_users: set[int] = set(USERS.values())  # who opened a private chat with the bot
        self._updates: list[dict[str, Any]] = []
        self._new_update = asyncio.Condition()
        self._rate_limited: dict[str, list[int]] = {}  # method -> retry_after answers still to give
        self.failures: dict[str, tuple[int, str]] = {}  # method -> (status, description) it always answers
        self.stalled: set[str] = set()  # methods that get no answer while the server runs (a dead network)
        self.sticker_sets: dict[str, list[dict[str, Any]]] = {}  # name -> its stickers (emoji, keywords)
        self.set_limit = 120  # stickers a static set holds
        self.blocked_by: set[int] = set()  # users who blocked the bot
        self._closing = asyncio.Event()
        self._ids = itertools.count(5000)
        self._update_ids = itertools.count(1)
        self.url = ""

    def rate_limit(self, method: str, retry_after: int, times: int = 1) -> None:
        self._rate_limited.setdefault(method, []).extend([retry_after] * times)

    def update(self, **payload: Any) -> dict[str, Any]:
        return {"update_id": next(self._update_ids), **payload}

    async def push(self, update: dict[str, Any]) -> None:
        async with self._new_update:
            self._updates.append(update)
            self._new_update.notify_all()

    def sent_file_id(self, call: Call) -> str:
        """The file_id Telegram gives a sticker the bot sent in `call`."""
        return f"out-{self.calls.index(call) + 1}"

    def called(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [
            call
            for call in self.calls
            if call.method == method and chat_id in (None, call.params.get("chat_id"))
        ]

    async def wait_for(self, method: str, within_s: float = 60, chat_id: int | None = None) -> Call:
        deadline = time.monotonic() + within_s
        while not self.called(method, chat_id):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {method} within {within_s} s; calls: {[c.method for c in self.calls]}"
                )
            await asyncio.sleep(0.05)
        return self.called(method, chat_id)[-1]

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[FakeBotApi]:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.*}", self._download)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        try:
            yield self
        finally:
            self._closing.set()  # stalled calls end, so the server can close
            await runner.cleanup()

    def settings(self, **overrides: Any) -> Settings:
        fake = {
            "telegram_token": TOKEN,
            "telegram_base_url": f"{self.url}/bot",
            "telegram_base_file_url": f"{self.url}/file/bot",
        }
        return Settings(**(fake | overrides))

    # --- the Bot API ---------------------------------------------------------------------------

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        form = await request.post()
        params: dict[str, Any] = {}
        call = Call(method, params)
        for name, value in form.items():
            if isinstance(value, web.FileField):
                call.upload, call.filename = value.file.read(), value.filename
            else:
                params[name] = _decoded(str(value))
        if method == "getUpdates":
            return web.json_response({"ok": True, "result": await self._get_updates(params)})
        self.calls.append(call)
        if self._rate_limited.get(method):
            retry_after = self._rate_limited[method].pop(0)
            return _error(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
        if method in self.failures:
            return _error(*self.failures[method])
        if method in self.stalled:
            await self._closing.wait()
            return _error(504, "Gateway Timeout")
        chat_id = params.get("chat_id")
        sends = {"sendMessage", "sendDocument", "sendSticker", "sendPhoto"}
        if method in sends and isinstance(chat_id, int) and chat_id > 0 and chat_id not in self.started_users:
            return _error(403, "Forbidden: bot can't initiate conversation with a user")
        if method == "getFile" and params["file_id"] not in self.files:
            return _error(400, "Bad Request: file is not available")
        refused = self._sticker_set_error(method, params)
        if refused is not None:
            return refused
        return web.json_response({"ok": True, "result": self._result(call)})

    def _sticker_set_error(self, method: str, params: dict[str, Any]) -> web.Response | None:
        """createNewStickerSet, addStickerToSet and deleteStickerSet as Telegram answers them, sets kept."""
        user, name = params.get("user_id"), params.get("name", "")
        if method in {"createNewStickerSet", "addStickerToSet"} and user in self.blocked_by:
            return _error(403, "Forbidden: bot was blocked by the user")
        if method == "createNewStickerSet":
            if user not in self.started_users:
                return _error(400, "Bad Request: PEER_ID_INVALID")
            if name in self.sticker_sets or not name.endswith("_by_" + BOT_USER["username"]):
                return _error(400, "Bad Request: sticker set name is already occupied")
            self.sticker_sets[name] = list(params["stickers"])
        elif method == "addStickerToSet":
            if name not in self.sticker_sets:
                return _error(400, "Bad Request: STICKERSET_INVALID")
            if len(self.sticker_sets[name]) >= self.set_limit:
                return _error(400, "Bad Request: STICKERS_TOO_MUCH")
            self.sticker_sets[name].append(params["sticker"])
        elif method == "deleteStickerSet" and self.sticker_sets.pop(name, None) is None:
            return _error(400, "Bad Request: STICKERSET_INVALID")
        return None

    def _result(self, call: Call) -> Any:
        params = call.params
        if call.method == "getMe":
            return BOT_USER
        if call.method == "getFile":
            file_id = params["file_id"]
            return {
                "file_id": file_id,
                "file_unique_id": f"u-{file_id}",
                "file_size": len(self.files[file_id]),
                "file_path": f"stickers/{file_id}.webp",
            }
        sent = {"sendMessage": {"text": params.get("text")}}.get(call.method)
        if call.method == "sendSticker":
            sent = {"sticker": _sticker(self.sent_file_id(call), "🙂", len(call.upload or b""))}
        if call.method == "sendDocument":
            sent = {"document": {"file_id": "doc", "file_unique_id": "doc", "file_name": call.filename}}
        if call.method == "sendPhoto":
            photo = {"file_id": "photo", "file_unique_id": "photo", "width": 960, "height": 228}
            sent = {"photo": [photo], "caption": params.get("caption")}
        if call.method == "editMessageText":
            sent = {"text": params.get("text"), "message_id": params["message_id"]}
        if sent is None:
            return True
        call.message_id = next(self._ids)
        return {**message(params["chat_id"], BOT_USER, call.message_id), **sent}

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset", 0))
        async with self._new_update:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            if not self._updates:
                with contextlib.suppress(TimeoutError):  # a long poll that ends empty
                    await asyncio.wait_for(self._new_update.wait(), float(params.get("timeout", 0)))
            return list(self._updates)

    async def _download(self, request: web.Request) -> web.Response:
        file_id = request.match_info["path"].removeprefix("stickers/").removesuffix(".webp")
        if file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id], content_type="image/webp")


def _decoded(value: str) -> Any:
    """python-telegram-bot sends non-string parameters JSON-encoded."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def _error(status: int, description: str, **parameters: Any) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def webp_image(colour: tuple[int, int, int] = (80, 200, 80)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (64, 64), (*colour, 255)).save(buffer, "WEBP")
    return buffer.getvalue()


def user(name: str) -> dict[str, Any]:
    return {"id": USERS[name], "is_bot": False, "first_name": name.title()}


def message(chat_id: int, sender: dict[str, Any], message_id: int, **extra: Any) -> dict[str, Any]:
    chat = {"id": chat_id, "type": "private" if chat_id > 0 else "group"}
    if chat_id < 0:
        chat["title"] = "Sticker fans"
    return {"message_id": message_id, "date": int(time.time()), "chat": chat, "from": sender, **extra}


def text_message(name: str, text: str, message_id: int, chat_id: int = GROUP) -> dict[str, Any]:
    entities = []
    if text.startswith("/"):
        entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return message(chat_id, user(name), message_id, text=text, entities=entities)


def _sticker(file_id: str, emoji: str, size: int, **extra: Any) -> dict[str, Any]:
    return {
        "file_id": file_id,
        "file_unique_id": f"u-{file_id}",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": emoji,
        "file_size": size,
        **extra,
    }


def sticker_message(
    api: FakeBotApi, name: str, emoji: str, message_id: int, image: bytes | None, chat_id: int = GROUP
) -> dict[str, Any]:
    """A sticker from a set; its file is downloadable when `image` is given."""
    file_id = f"sticker-{message_id}"
    if image is not None:
        api.files[file_id] = image
    sticker = _sticker(file_id, emoji, len(image or b""), set_name="FrogFriends")
    return message(chat_id, user(name), message_id, sticker=sticker)


def button_press(name: str, action: str, chat_id: int = GROUP) -> dict[str, Any]:
    shown = message(chat_id, BOT_USER, 4000, text="a question")
    return {"id": f"cb-{action}", "from": user(name), "chat_instance": "ci", "data": action, "message": shown}


class TelegramDriver:
    """The contract on Telegram: raw updates through python-telegram-bot's Application (handlers,
    filters, the Bot's HTTP calls to the fake API); what the fake API received is what users saw."""

    platform = Platform.TELEGRAM
    sticker_format = "WEBP"
    can_delete = False  # Telegram tells bots nothing of deleted messages

    def __init__(self, api: FakeBotApi, application: Application) -> None:
        self.api = api
        self.application = application

    @classmethod
    @asynccontextmanager
    async def started(cls, bot: StickerBot) -> AsyncIterator[TelegramDriver]:
        async with FakeBotApi().serving() as api:
            application = build_application(api.settings(), bot)
            await application.initialize()
            try:
                yield cls(api, application)
            finally:
                await application.shutdown()

    @property
    def sent(self) -> list[Sent]:
        shown: list[Sent] = []
        by_id: dict[int, Sent] = {}
        progress_ids = {
            call.params["message_id"]
            for call in self.api.calls
            if call.method in {"editMessageText", "deleteMessage"}
        }
        for call in self.api.calls:
            params, chat = call.params, str(call.params.get("chat_id"))
            buttons = [
                Button(b["text"], b["callback_data"])
                for row in (params.get("reply_markup") or {}).get("inline_keyboard", [])
                for b in row
            ]
            if call.method == "sendMessage":
                item = Sent("text", chat, params["text"], buttons)
                by_id[call.message_id or 0] = item
                shown.append(item)
            elif call.method == "editMessageText":
                shown.append(Sent("progress", chat, params["text"]))
            elif call.method == "sendSticker":
                shown.append(Sent("sticker", chat, buttons=buttons, data=call.upload or b""))
            elif call.method == "sendPhoto":
                shown.append(Sent("image", chat, params.get("caption", ""), buttons, call.upload or b""))
            elif call.method == "sendDocument":
                shown.append(Sent("file", chat, call.filename or "", data=call.upload or b""))
        for message_id in progress_ids:
            if message_id in by_id:
                by_id[message_id].kind = "progress"
        return shown

    async def say(self, user: str, text: str, *, sticker: str | None = None, message_id: int) -> None:
        await self.deliver(message=text_message(user, text, message_id))
        if sticker:
            image = webp_image()
            await self.deliver(message=sticker_message(self.api, user, sticker, message_id + 10_000, image))

    async def command(self, user: str, name: str, argument: str = "") -> None:
        await self.deliver(message=text_message(user, f"/{name} {argument}".strip(), next(self.api._ids)))

    async def press(self, user: str, action: str) -> None:
        assert any(b.action == action for s in self.sent for b in s.buttons), f"no button {action}"
        await self.deliver(callback_query=button_press(user, action))

    async def edit(self, user: str, message_id: int, text: str) -> None:
        edited = {**text_message(user, text, message_id), "edit_date": int(time.time())}
        await self.deliver(edited_message=edited)

    async def delete(self, user: str, message_id: int) -> None:
        raise NotImplementedError("Telegram sends bots no event for a deleted message")

    async def deliver(self, **payload: Any) -> None:
        """One update handled to the end, on its own (past the update processor)."""
        await self.application.process_update(self._update(payload))

    async def enqueue(self, **payload: Any) -> None:
        """One update the way polling hands it over: through the update queue and the update processor,
        concurrently with the others (the Application must be started)."""
        await self.application.update_queue.put(self._update(payload))

    def _update(self, payload: dict[str, Any]) -> Update:
        return Update.de_json(self.api.update(**payload), self.application.bot)
