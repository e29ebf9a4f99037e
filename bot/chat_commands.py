"""The bot's use cases, platform-neutral: record behavior (with consent), /sticker, /start, /privacy,
/consent, /export, /forget, /about, /stats and the admin `retrain`. Adapters call `dispatch` and
`on_button`; replies go out through the ChatPlatform they pass in."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.behavior import CANT_SAVE, StoreUnavailable
from bot.chat import (
    Button,
    ChatPlatform,
    IncomingMessage,
    IncomingSticker,
    button_action,
    image_problem,
    parse_action,
)
from bot.export_archive import ARCHIVE_NAME, export_archive
from bot.identity import Platform, UserKey
from bot.inline_stickers import text_of_start
from bot.personal_alpha import alpha_line, personal_alpha
from bot.progress_relay import ProgressRelay
from bot.service import ServiceError
from bot.settings import Settings
from bot.sticker_choices import (
    ANOTHER,
    CHOOSE,
    PACK,
    PICK,
    KeptStickers,
    parse_generation,
    sticker_buttons,
)
from bot.text_input import clean_text
from bot.user_files import UserFiles

if TYPE_CHECKING:
    from bot.service import ProgressCallback, StickerBackend
    from bot.sticker_engine import EngineOutcome, EngineRequest
    from bot.stickers import StickerJob, StickerReply
    from bot.store import BehaviorStore

log = logging.getLogger(__name__)

PRIVACY = """What pmg-stickers stores, and why:
• Always: your platform id and your consent choices (so I know what you said yes or no to).
• With your consent to personalize: the messages and the stickers/emoji you send in chats where I can \
read them (their text, emoji, names and set titles; never other people's), your name as the platform \
shows it, the preference keywords I learn from them, and every sticker I make for you with the \
keywords and scores behind it, its other candidates (for 🎨 Choose) and what you did with it (sent, \
🔄 another, the one you chose), and the names of the sticker packs I made for you. Edit or delete a \
message on the platform and I follow.
• With your consent to train as well: the images of the stickers you send, to train the shared model \
that turns taste into pictures (one model for all users; no image or text of yours is kept inside it).
• Without consent to personalize I keep nothing of yours: not your words, not the stickers I make \
for you; they follow only the mood of what you ask.
How long: until you delete it. /forget deletes all of it, files and the packs I made included, at once. Withdrawing \
consent (/consent) deletes what it covered: "Nothing" deletes your messages, stickers, keywords and \
the stickers I made for you; "Personalize only" deletes your sticker images. The shared model is \
trained again only by the next retrain. /export sends you all of it as a zip, images included."""

MAX_STICKERS_PER_MESSAGE = 16  # a message of 500 emoji says no more about taste than one of 16
HELP = "Commands: /sticker [text], /mypack, /start, /consent, /privacy, /export, /forget, /about"
ADMIN_HELP = "Admin: /stats, /retrain"
CONSENT_CHOICES = {"all": (True, True), "personalize": (True, False), "none": (False, False)}
DELETED_WORDS = {  # how the store's deletion counts read in a reply: (one, several)
    "messages": ("message", "messages"),
    "sticker_uses": ("sticker/emoji you sent", "stickers/emoji you sent"),
    "generations": ("sticker I made for you", "stickers I made for you"),
    "feedback": ("note of what you did with a sticker", "notes of what you did with stickers"),
    "images": ("image", "images"),
    "sticker_images": ("sticker image", "sticker images"),
    "preference_keywords": ("set of preference keywords", "sets of preference keywords"),
}


def deleted_line(deleted: dict[str, int]) -> str:
    """What a withdrawal deleted, in words; empty when it deleted nothing."""
    parts = [
        f"{count} {DELETED_WORDS[name][count != 1]}"
        for name, count in deleted.items()
        if count and name in DELETED_WORDS
    ]
    return f" Deleted: {', '.join(parts)}." if parts else ""


class StickerBot:
    """One instance serves every platform; `platform` says where the answer goes."""

    def __init__(
        self,
        store: BehaviorStore,
        service: StickerBackend[EngineRequest, EngineOutcome],
        settings: Settings,
        job: StickerJob,
        *,
        about: str,
        retrain_command: list[str] | None = None,
    ) -> None:
        self.store = store
        self.service = service
        self.settings = settings
        self.job = job
        self.about_text = about
        self.files = UserFiles(settings.user_files_dir)  # what the console and `pmg sticker` wrote
        self.retrain_command = retrain_command or [sys.executable, "-m", "bot.cli", "retrain", "--json"]
        self.kept = KeptStickers(store)  # choose, pick, packs, inline: what a made sticker can become
        self._busy: set[UserKey] = set()  # users with a /sticker on its way
        self._last_sticker: dict[UserKey, float] = {}  # monotonic time of each user's last /sticker
        self._retraining: asyncio.Task[None] | None = None
        self.commands: dict[str, Callable[[ChatPlatform, IncomingMessage, str], Awaitable[None]]] = {
            "start": self.start,
            "sticker": self.sticker,
            "privacy": self.privacy,
            "consent": self.consent,
            "export": self.export,
            "forget": self.forget,
            "about": self.about,
            "help": self.help,
            "stats": self.stats,
            "retrain": self.retrain,
            "mypack": self.kept.mypack,
        }
        self.admin_only = {"stats", "retrain"}
        self.sticker_actions: dict[str, Callable[[ChatPlatform, UserKey, str, str], Awaitable[None]]] = {
            ANOTHER: self.another,
            CHOOSE: self.kept.choose,
            PICK: self.kept.pick,
            PACK: self.kept.add_to_pack,
        }

    # --- routing ---------------------------------------------------------------------------

    async def dispatch(self, platform: ChatPlatform, message: IncomingMessage) -> None:
        """A command runs its use case; any other message is recorded (with consent). A store that
        cannot be reached is said to the user, not raised: the bot keeps running."""
        try:
            await self._dispatch(platform, message)
        except StoreUnavailable as error:
            log.warning(
                "%s from %s not handled: %s",
                "command" if message.text.startswith("/") else "message",
                message.user,
                error,
            )
            if message.text.strip().startswith("/"):  # a plain message gets no reply from the bot anyway
                await platform.send_text(message.chat, CANT_SAVE)

    async def _dispatch(self, platform: ChatPlatform, message: IncomingMessage) -> None:
        # Cleaned once here (valid UTF-8, no NULs, bounded): a command's argument reaches the models.
        message = replace(message, text=clean_text(message.text, self.settings.max_message_chars).text)
        text = message.text.strip()
        if not text.startswith("/"):
            await self.record(message)
            return
        name, _, argument = text[1:].partition(" ")
        name = name.split("@")[0].lower()  # Telegram's /sticker@BotName
        handler = self.commands.get(name)
        if handler is None:
            await platform.send_text(message.chat, f"I don't know /{name[:32]}. {HELP}")
            return
        if name in self.admin_only and not self.settings.is_admin(
            message.user.platform, message.user.external_id
        ):
            log.warning("non-admin %s tried /%s", message.user, name)
            await platform.send_text(message.chat, f"/{name} is for the bot's admins.")
            return
        await handler(platform, message, argument.strip())

    @staticmethod
    def may_press(user: UserKey, action: str) -> bool:
        """Whether `user` may press this button: it names whom it was made for (in a group, nobody
        else's press changes or removes anything). Only a consent choice, which acts on the presser
        alone, may come from a button too old to name anyone."""
        verb, _, owner = parse_action(action)
        return owner == user.external_id or (owner is None and verb == "consent")

    async def on_button(self, platform: ChatPlatform, user: UserKey, chat: str, action: str) -> None:
        """A pressed button: consent choices, the /forget confirmation, and 🔄/🎨/1…N under stickers."""
        try:
            await self._on_button(platform, user, chat, action)
        except StoreUnavailable as error:
            log.warning("button %r of %s not handled: %s", action, user, error)
            await platform.send_text(chat, CANT_SAVE)

    async def _on_button(self, platform: ChatPlatform, user: UserKey, chat: str, action: str) -> None:
        if not self.may_press(user, action):
            await platform.send_text(chat, "That question was for someone else; ask me yourself.")
            return
        verb, choice, _ = parse_action(action)
        if verb == "consent" and choice in CONSENT_CHOICES:
            personalize, train = CONSENT_CHOICES[choice]
            saved = await self.store.set_consent(user, personalize=personalize, train=train)
            line = self._consent_line(saved.consent.personalize, saved.consent.train)
            await platform.send_text(chat, f"Saved. {line}{deleted_line(saved.deleted)}")
        elif verb == "forget" and choice == "yes":
            packs = await self.store.packs(user)
            removed = await self.store.forget_user(user)
            files = self.files.delete(user)
            gone = await self.kept.delete_packs(platform, packs)
            log.info("forgot %s: %s, %d files and %d packs", user, removed, files, gone)
            await platform.send_text(chat, "Done: everything I stored about you is deleted.")
        elif verb == "forget":
            await platform.send_text(chat, "Nothing was deleted.")
        elif verb in self.sticker_actions:
            await self.sticker_actions[verb](platform, user, chat, choice)

    # --- behavior ----------------------------------------------------------------------------

    async def record(self, message: IncomingMessage) -> None:
        """Keep what the user sends, only with their consent; sticker images only with consent to train.
        (The store checks consent again as it writes: this check only spares downloads.)"""
        consent = await self.store.get_consent(message.user)
        if not consent.personalize:
            return
        if message.text.strip():
            await self.store.record_message(
                message.user,
                message.chat,
                message.text,
                message_id=message.message_id,
                display_name=message.display_name,
            )
        for index, incoming in enumerate(message.stickers[:MAX_STICKERS_PER_MESSAGE]):
            image = await self._training_image(incoming) if consent.train else None
            await self.store.record_sticker_use(
                message.user,
                message.chat,
                incoming.sticker,
                message_id=message.message_id,
                item_index=index,
                image=image,
            )

    async def edited(self, message: IncomingMessage) -> None:
        """An edited message: the stored text follows the edit (only messages already kept)."""
        if message.message_id is None or not message.text.strip() or message.text.lstrip().startswith("/"):
            return
        try:
            if (await self.store.get_consent(message.user)).personalize:
                await self.store.edit_message(message.user, message.chat, message.message_id, message.text)
        except StoreUnavailable as error:  # the platform sends no retry: say so where an operator looks
            log.error(
                "the edit of message %s by %s was not applied: %s", message.message_id, message.user, error
            )

    async def deleted(self, platform: Platform, chat: str, message_id: str) -> None:
        """A message deleted on the platform is deleted here too."""
        try:
            removed = await self.store.delete_message(platform, chat, message_id)
        except StoreUnavailable as error:  # the platform sends no retry: say so where an operator looks
            log.error(
                "the deletion of message %s in %s:%s was not applied: %s",
                message_id,
                platform.value,
                chat,
                error,
            )
            return
        if removed:
            log.info("deleted message %s in %s:%s (%d rows)", message_id, platform.value, chat, removed)

    async def _training_image(self, incoming: IncomingSticker) -> bytes | None:
        """The sticker's picture, if it has one that decodes as an image and fits the store (else the
        use is kept alone)."""
        if incoming.image is None:
            return None
        data = await incoming.image()
        problem = None if data is None else image_problem(data)
        if data is not None and problem is None and len(data) > self.store.max_blob_bytes:
            problem = f"{len(data)} bytes is over PMG_MAX_BLOB_BYTES"
        if problem is None:
            return data
        log.warning("sticker %s: image dropped, %s", incoming.sticker.platform_sticker_id, problem)
        return None

    # --- commands ----------------------------------------------------------------------------

    async def start(self, platform: ChatPlatform, message: IncomingMessage, argument: str) -> None:
        """The welcome and consent question; from inline mode's button, the sticker it asked for."""
        asked = text_of_start(argument)
        if asked is not None:
            await self.sticker(platform, message, asked)
            return
        await platform.send_text(
            message.chat,
            "Hi! I make stickers that fit you and the moment. May I learn from what you send? "
            "(/privacy says what that means)",
            self._consent_buttons(message.user, "No, thanks"),
        )

    async def consent(self, platform: ChatPlatform, message: IncomingMessage, _: str) -> None:
        current = await self.store.get_consent(message.user)
        await platform.send_text(
            message.chat,
            f"{self._consent_line(current.personalize, current.train)} Change it "
            "(withdrawing deletes what it covered):",
            self._consent_buttons(message.user, "Nothing (delete what you keep)"),
        )

    @staticmethod
    def _consent_buttons(user: UserKey, decline: str) -> list[Button]:
        return [
            Button("Personalize + help train", button_action("consent", "all", user)),
            Button("Personalize only", button_action("consent", "personalize", user)),
            Button(decline, button_action("consent", "none", user)),
        ]

    async def privacy(self, platform: ChatPlatform, message: IncomingMessage, _: str) -> None:
        await platform.send_text(message.chat, PRIVACY)

    async def export(self, platform: ChatPlatform, message: IncomingMessage, _: str) -> None:
        """Everything stored about the user: the data as JSON and their images, in one zip."""
        data = await self.store.export_user(message.user)
        images = {
            blob["sha256"]: await self.store.read_blob(blob["sha256"]) for blob in data.get("blobs", [])
        }
        archive = await asyncio.to_thread(export_archive, data, images.__getitem__)
        await platform.send_file(message.chat, ARCHIVE_NAME, archive)

    async def forget(self, platform: ChatPlatform, message: IncomingMessage, _: str) -> None:
        await platform.send_text(
            message.chat,
            "Delete everything I stored about you (messages, stickers, images, generated stickers, "
            "keywords, consent)?",
            [
                Button("Yes, delete it all", button_action("forget", "yes", message.user)),
                Button("No", button_action("forget", "no", message.user)),
            ],
        )

    async def about(self, platform: ChatPlatform, message: IncomingMessage, _: str) -> None:
        chosen = await self.store.chosen_weights(message.user)
        default = self.settings.alpha
        line = alpha_line(personal_alpha(chosen, default), default, len(chosen))
        await platform.send_text(message.chat, self.about_text + (f"\n{line}" if line else ""))

    async def help(self, platform: ChatPlatform, message: IncomingMessage, _: str) -> None:
        admin = self.settings.is_admin(message.user.platform, message.user.external_id)
        await platform.send_text(message.chat, HELP + (f"\n{ADMIN_HELP}" if admin else ""))

    async def stats(self, platform: ChatPlatform, message: IncomingMessage, _: str) -> None:
        counts = await self.store.counts()
        promoted = await self.store.promoted_checkpoint()
        lines = [f"{name}: {value}" for name, value in {**counts, **await self.service.stats()}.items()]
        lines.append(f"profile: {self.job.profile}, keyword model: {self.job.keyword_model}")
        lines.append(f"checkpoint: {promoted[0] if promoted else 'none (keywords alone)'}")
        await platform.send_text(message.chat, "\n".join(lines))

    async def sticker(self, platform: ChatPlatform, message: IncomingMessage, text: str) -> None:
        """A sticker answering `text`, else the user's last messages in this chat."""
        from bot.stickers import make_sticker

        conversation, context_ids = ([text], None) if text else await self._recent_lines(message)
        if not conversation:
            await platform.send_text(message.chat, "Tell me what to answer: /sticker we won the match!")
            return
        await self._draw_and_send(
            platform,
            message.user,
            message.chat,
            lambda report, alpha: make_sticker(
                self.store,
                self.service,
                self.job,
                message.user,
                conversation[-self.settings.conversation_turns :],
                alpha=alpha,
                chat=message.chat,
                progress=report,
                deadline_s=self.settings.request_deadline_s,
                context_message_ids=context_ids,
            ),
        )

    async def _draw_and_send(
        self,
        platform: ChatPlatform,
        user: UserKey,
        chat: str,
        draw: Callable[[ProgressCallback, float], Awaitable[StickerReply]],
    ) -> int | None:
        """One sticker at a time per user, after their cooldown, with progress and their own α; a failure
        is one friendly line (and a log line with its id). A recorded sticker gets 🔄/🎨 buttons.
        Returns its generation."""
        if user in self._busy:
            await platform.send_text(chat, "One at a time: your sticker is on its way.")
            return None
        wait = self._cooldown_left(user)
        if wait > 0:
            await platform.send_text(chat, f"Easy there! Your next sticker in {math.ceil(wait)} s.")
            return None
        self._busy.add(user)
        self._last_sticker[user] = time.monotonic()
        request_id = uuid.uuid4().hex[:8]
        try:
            alpha = personal_alpha(await self.store.chosen_weights(user), self.settings.alpha)
            async with ProgressRelay(platform, chat) as relay:  # ends before any answer is sent
                reply = await draw(relay.report, alpha)
        except ServiceError as error:
            await platform.send_text(chat, f"Sorry, {error}.")
            return None
        except StoreUnavailable:
            raise  # dispatch answers it
        except Exception:
            log.exception("sticker %s failed for %s", request_id, user)
            await platform.send_text(
                chat, f"Sorry, that sticker failed (error {request_id}). Please try again."
            )
            return None
        finally:
            self._busy.discard(user)
        files, generation_id = reply.result.files, reply.generation_id
        if files is None:
            await platform.send_text(
                chat, "Sorry, I couldn't make a sticker I'd be happy to send for that one."
            )
            return None
        chosen = reply.result.chosen
        assert chosen is not None  # it has files
        if generation_id is None:
            await platform.send_sticker(chat, files.webp, files.png)
            return None
        buttons = sticker_buttons(
            generation_id, user, candidate=chosen, pack_label=platform.packs.label if platform.packs else None
        )
        file_id = await platform.send_sticker(chat, files.webp, files.png, buttons)
        weights = self.job.weight_sets[chosen]
        await self.store.record_feedback(
            user, generation_id, "sent", chat=chat, candidate_index=chosen, weights=weights, file_id=file_id
        )
        return generation_id

    async def another(self, platform: ChatPlatform, user: UserKey, chat: str, choice: str) -> None:
        """🔄 The same keywords and mood, new seeds: no LLM question is asked again."""
        from bot.stickers import make_another

        earlier = await self.kept.generation(platform, user, chat, parse_generation(choice))
        if earlier is None:
            return
        made = await self._draw_and_send(
            platform,
            user,
            chat,
            lambda report, alpha: make_another(
                self.store,
                self.service,
                self.job,
                user,
                earlier,
                alpha=alpha,
                progress=report,
                deadline_s=self.settings.request_deadline_s,
            ),
        )
        if made is not None:
            await self.store.record_feedback(user, earlier.id, "another", chat=chat)

    async def retrain(self, platform: ChatPlatform, message: IncomingMessage, _: str) -> None:
        """Start `pmg retrain` in its own process (stickers keep flowing); report progress and the result."""
        if self._retraining is not None and not self._retraining.done():
            await platform.send_text(message.chat, "A retrain is already running; I'll report when it ends.")
            return
        self._retraining = asyncio.create_task(self._run_retrain(platform, message.chat))
        await platform.send_text(message.chat, "Retrain started.")

    async def _run_retrain(self, platform: ChatPlatform, chat: str) -> None:
        """However the retrain ends (it cannot start, it fails, its report does not parse), the admin is
        told, with an error id where the detail went to the log."""
        try:
            outcome = await self._retrain_outcome(platform, chat)
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            log.exception("retrain failed (error %s)", error_id)
            outcome = f"Retrain failed (error {error_id}); the bot's log has the details."
        try:
            await platform.send_text(chat, outcome)
        except Exception:
            log.exception("could not tell the admin how the retrain ended: %s", outcome)

    async def _retrain_outcome(self, platform: ChatPlatform, chat: str) -> str:
        process = await asyncio.create_subprocess_exec(
            *self.retrain_command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        waited = 0
        communicate = asyncio.ensure_future(process.communicate())
        while not communicate.done():
            await asyncio.wait({communicate}, timeout=60)
            waited += 60
            if not communicate.done():
                try:
                    await platform.progress(chat, f"retrain: still training ({waited // 60} min)…")
                except Exception as error:  # a lost progress line must not lose the result
                    log.warning("retrain progress not shown: %s", error)
        stdout, stderr = communicate.result()
        if process.returncode != 0:
            last = (stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            log.error(
                "retrain failed (exit %s): %s", process.returncode, stderr.decode(errors="replace")[-2000:]
            )
            return f"Retrain failed: {last[0][:300]}"
        report = json.loads(stdout or b"{}")
        verdict = "promoted" if report.get("promoted") else "kept on file, not promoted"
        return (
            f"Retrain done: {report.get('examples')} examples, {report.get('steps')} steps, held-out loss "
            f"{report.get('val_loss_before')} → {report.get('val_loss_after')}; checkpoint "
            f"{report.get('checkpoint')} {verdict}."
        )

    # --- helpers -----------------------------------------------------------------------------

    def _cooldown_left(self, user: UserKey) -> float:
        """Seconds until `user` may ask again; entries past the cooldown are pruned as it goes, so the
        map holds only users who asked within the last cooldown."""
        now = time.monotonic()
        cooldown = self.settings.sticker_cooldown_s
        expired = [key for key, asked in self._last_sticker.items() if now - asked >= cooldown]
        for key in expired:
            del self._last_sticker[key]
        return self._last_sticker.get(user, -math.inf) + cooldown - now

    async def _recent_lines(self, message: IncomingMessage) -> tuple[list[str], list[int]]:
        """The user's last stored messages in this chat, and their row ids (what the generation names)."""
        history = await self.store.recent_history(
            message.user, self.settings.conversation_turns * 2, chat=message.chat
        )
        lines = [
            item
            for item in history
            if item.kind == "message" and item.text and not item.text.startswith("/") and item.id is not None
        ][-self.settings.conversation_turns :]
        return [item.text for item in lines], [item.id for item in lines if item.id is not None]

    @staticmethod
    def _consent_line(personalize: bool, train: bool) -> str:
        if personalize and train:
            return "I personalize your stickers and may use your sticker images to train the model."
        if personalize:
            return "I personalize your stickers; your sticker images are not used for training."
        return "I keep nothing of yours; stickers follow only the mood of what you ask."
