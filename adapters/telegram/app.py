"""The Telegram bot: python-telegram-bot's Application (AIORateLimiter, concurrent updates) routing
messages, edits and button presses to the shared use cases; `running_telegram` polls until stopped."""

from __future__ import annotations

import contextlib
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    InlineQueryResultCachedSticker,
    InlineQueryResultsButton,
    Update,
)
from telegram.constants import ChatType, UpdateType
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChosenInlineResultHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from adapters.telegram.replies import TelegramReplies
from adapters.telegram.update_guard import SkipMalformedUpdates
from adapters.telegram.update_order import PerUserOrder
from adapters.telegram.updates import incoming_message
from bot import log_redaction
from bot.chat_commands import StickerBot
from bot.identity import Platform, UserKey
from bot.inline_stickers import start_parameter
from bot.settings import Settings
from bot.text_input import clean_text

log = logging.getLogger(__name__)

COMMANDS = [
    BotCommand("sticker", "a sticker for what you say (or your last messages)"),
    BotCommand("mypack", "your personal sticker pack"),
    BotCommand("start", "what I do, and your consent"),
    BotCommand("consent", "see or change what I may learn from you"),
    BotCommand("privacy", "what I store, why, and how to delete it"),
    BotCommand("export", "all your data, as a file"),
    BotCommand("forget", "delete everything about you"),
    BotCommand("about", "models, profile and credits"),
    BotCommand("help", "the commands"),
]
ALLOWED_UPDATES = [
    UpdateType.MESSAGE,
    UpdateType.EDITED_MESSAGE,
    UpdateType.CALLBACK_QUERY,
    UpdateType.INLINE_QUERY,
    UpdateType.CHOSEN_INLINE_RESULT,
]
INLINE_CACHE_S = 10  # Telegram may reuse an answer this long: short, as new stickers keep coming
MAX_INLINE_CHARS = 256  # Telegram's own limit on an inline query
CONCURRENT_UPDATES = 256  # updates in flight; a /sticker waits on the service's worker, not the loop
SEND_RETRIES = 3  # a 429 is retried after its retry_after this many times
SLOW_DOWN = "Slow down: I'm still working through your earlier messages, so I skipped some."


class TelegramStartError(RuntimeError):
    """The bot could not start on Telegram; the message says what to fix."""


class TelegramHandlers:
    """Update → use case; every answer goes out through a TelegramReplies made for that update."""

    def __init__(self, bot: StickerBot) -> None:
        self.bot = bot

    async def message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.message is None:
            return
        incoming = incoming_message(context.bot, update.message)
        if incoming is None or _for_another_bot(incoming.text, context.bot.username):
            return
        await self.bot.dispatch(self._replies(update, context), incoming)

    async def edited(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.edited_message is None:
            return
        incoming = incoming_message(context.bot, update.edited_message)
        if incoming is not None:
            await self.bot.edited(incoming)

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or query.data is None:
            return
        user = UserKey.of(Platform.TELEGRAM, query.from_user.id)
        if not self.bot.may_press(user, query.data):  # a bystander in a group: nothing changes
            await _answer(query, "That question was for someone else; ask me yourself.")
            return
        await _answer(query)  # stops the spinner on the user's button
        message = query.message
        chat = str(message.chat.id) if message is not None else str(query.from_user.id)
        if message is not None and message.is_accessible:
            with contextlib.suppress(BadRequest):  # a choice is made once: the buttons go
                await context.bot.edit_message_reply_markup(int(chat), message.message_id, reply_markup=None)
        await self.bot.on_button(self._replies(update, context), user, chat, query.data)

    async def inline_query(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """`@bot <text>`: the user's own stickers ranked for it, answered at once (nothing is drawn);
        the button opens the private chat with `/sticker <text>`."""
        query = update.inline_query
        if query is None:
            return
        user = UserKey.of(Platform.TELEGRAM, query.from_user.id)
        text = clean_text(query.query, MAX_INLINE_CHARS).text
        stickers = await self.bot.kept.inline_stickers(user, text)
        results = [
            InlineQueryResultCachedSticker(f"{sticker.generation_id}-{n}", sticker.file_id)
            for n, sticker in enumerate(stickers)
        ]
        button = InlineQueryResultsButton("✨ Draw a new one", start_parameter=start_parameter(text or "hi"))
        await query.answer(results, cache_time=INLINE_CACHE_S, is_personal=True, button=button)

    async def chosen_inline_result(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Sent through inline mode (with /setinlinefeedback on): recorded as feedback."""
        chosen = update.chosen_inline_result
        if chosen is not None:
            await self.bot.kept.inline_chosen(
                UserKey.of(Platform.TELEGRAM, chosen.from_user.id), chosen.result_id
            )

    async def error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Anything a handler did not handle: a log line with an id, and a short word to the user."""
        error_id = uuid.uuid4().hex[:8]
        log.error("telegram update failed (error %s)", error_id, exc_info=context.error)
        if isinstance(update, Update) and update.effective_chat is not None:
            with contextlib.suppress(TelegramError):
                await context.bot.send_message(
                    update.effective_chat.id, f"Sorry, something went wrong (error {error_id})."
                )

    @staticmethod
    def _replies(update: Update, context: ContextTypes.DEFAULT_TYPE) -> TelegramReplies:
        user = update.effective_user
        chat = update.effective_chat
        return TelegramReplies(
            context.bot,
            user.id if user is not None else 0,
            private_chat=chat is not None and chat.type == ChatType.PRIVATE,
            reply_to=update.message.message_id if update.message is not None else None,
            first_name=user.first_name if user is not None else None,
        )


async def _answer(query: CallbackQuery, alert: str | None = None) -> None:
    """Answer a button press; too late (it waited behind the user's earlier updates) is logged, and the
    press still acts."""
    try:
        await query.answer(alert, show_alert=alert is not None)
    except TelegramError as error:
        log.info("telegram: button press %s not answered (%s)", query.id, error)


def _for_another_bot(text: str, username: str) -> bool:
    """`/start@OtherBot` in a group with several bots is not ours to answer (nor to record)."""
    command = text.split(maxsplit=1)[0] if text.startswith("/") else ""
    _, at, addressee = command.partition("@")
    return bool(at) and addressee.lower() != username.lower()


def build_application(settings: Settings, bot: StickerBot) -> Application:
    """The Application with its handlers, talking to `PMG_TELEGRAM_BASE_URL` (Telegram's own by default)."""
    if settings.telegram_token is None:
        raise TelegramStartError("set PMG_TELEGRAM_TOKEN to the token @BotFather gave you")
    order = PerUserOrder(CONCURRENT_UPDATES)
    application = (
        ApplicationBuilder()
        .token(settings.telegram_token.get_secret_value())
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        .rate_limiter(AIORateLimiter(max_retries=SEND_RETRIES))
        .get_updates_request(SkipMalformedUpdates())
        .concurrent_updates(order)
        .build()
    )
    # a task of the Application's, so stopping waits for the note to go out
    order.on_overflow = lambda update: application.create_task(_ask_to_slow_down(application.bot, update))
    handlers = TelegramHandlers(bot)
    application.add_handler(CallbackQueryHandler(handlers.button))
    application.add_handler(InlineQueryHandler(handlers.inline_query))
    application.add_handler(ChosenInlineResultHandler(handlers.chosen_inline_result))
    application.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE, handlers.edited))
    application.add_handler(MessageHandler(filters.UpdateType.MESSAGE, handlers.message))
    application.add_error_handler(handlers.error)
    return application


async def _ask_to_slow_down(bot: Bot, update: Update) -> None:
    """The user whose updates overflowed their queue hears why some went unanswered."""
    if update.effective_chat is None:
        return
    try:
        await bot.send_message(update.effective_chat.id, SLOW_DOWN)
    except TelegramError as error:  # only a courtesy: the dropped updates are logged already
        log.info("telegram: the slow-down note to chat %s failed (%s)", update.effective_chat.id, error)


def webhook_secret(settings: Settings) -> str:
    """The secret Telegram must send with each update: only Telegram can post updates to the bot."""
    if settings.telegram_webhook_secret is not None:
        return settings.telegram_webhook_secret.get_secret_value()
    secret = secrets.token_urlsafe(32)
    log_redaction.redact(secret)  # made here, so only here can the logs learn to hide it
    return secret


class RunningTelegram:
    """The bot on Telegram while `running_telegram` runs it."""

    def __init__(self, application: Application) -> None:
        self.application = application

    async def stop_taking_updates(self) -> None:
        """Stop polling (or the webhook server): updates not yet fetched wait on Telegram's side for the
        next start; those in hand are still answered."""
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()


@contextlib.asynccontextmanager
async def running_telegram(
    settings: Settings, bot: StickerBot, *, poll_timeout: int = 10
) -> AsyncIterator[RunningTelegram]:
    """Take updates (polling, or a webhook when PMG_TELEGRAM_WEBHOOK_URL is set) until the block exits;
    then stop taking them and finish the updates in hand."""
    application = build_application(settings, bot)
    running = RunningTelegram(application)
    try:
        await application.initialize()  # getMe: checks the token
    except InvalidToken as error:
        raise TelegramStartError(
            "Telegram rejected PMG_TELEGRAM_TOKEN; copy it again from @BotFather"
        ) from error
    except NetworkError as error:
        raise TelegramStartError(
            f"cannot reach the Bot API at {settings.telegram_base_url}: {error}"
        ) from error
    try:
        await application.bot.set_my_commands(COMMANDS)
        await application.start()
        assert application.updater is not None  # built by ApplicationBuilder
        if settings.telegram_webhook_url:
            await application.updater.start_webhook(
                listen=settings.telegram_webhook_listen,
                port=settings.telegram_webhook_port,
                url_path=urlsplit(settings.telegram_webhook_url).path.lstrip("/"),
                webhook_url=settings.telegram_webhook_url,
                secret_token=webhook_secret(settings),
                allowed_updates=ALLOWED_UPDATES,
            )
            log.info(
                "telegram: @%s takes updates at %s", application.bot.username, settings.telegram_webhook_url
            )
        else:
            await application.updater.start_polling(timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES)
            log.info("telegram: polling as @%s", application.bot.username)
        yield running
    finally:
        await running.stop_taking_updates()
        if application.running:
            await application.stop()
        await application.shutdown()
