"""initial behavior store

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25 20:22:17.988103
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("mime", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blobs")),
    )
    op.create_table(
        "chats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "platform IN ('telegram', 'discord', 'console')", name=op.f("ck_chats_known_platform")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chats")),
        sa.UniqueConstraint("platform", "external_id", name=op.f("uq_chats_platform_external_id")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=True),
        sa.Column("consent_personalize", sa.Boolean(), nullable=False),
        sa.Column("consent_train", sa.Boolean(), nullable=False),
        sa.Column("consent_updated_at", sa.DateTime(), nullable=True),
        sa.Column("behavior_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "platform IN ('telegram', 'discord', 'console')", name=op.f("ck_users_known_platform")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("platform", "external_id", name=op.f("uq_users_platform_external_id")),
    )
    op.create_table(
        "generations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.Integer(), nullable=True),
        sa.Column("request_text", sa.Text(), nullable=False),
        sa.Column("preference_keywords", sa.JSON(), nullable=False),
        sa.Column("target_keywords", sa.JSON(), nullable=False),
        sa.Column("mood", sa.String(length=32), nullable=True),
        sa.Column("weight_sets", sa.JSON(), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("chosen_index", sa.Integer(), nullable=True),
        sa.Column("chosen_sha256", sa.String(length=64), nullable=True),
        sa.Column("profile", sa.String(length=16), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("checkpoint_version", sa.String(length=64), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_generations_chat_id_chats"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["chosen_sha256"], ["blobs.sha256"], name=op.f("fk_generations_chosen_sha256_blobs")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_generations_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generations")),
    )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_generations_user_id_created_at"), ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.Integer(), nullable=False),
        sa.Column("platform_message_id", sa.String(length=64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_truncated", sa.Boolean(), nullable=False),
        sa.Column("original_length", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_messages_chat_id_chats"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_messages_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint(
            "chat_id", "platform_message_id", name=op.f("uq_messages_chat_id_platform_message_id")
        ),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messages_user_id_created_at"), ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "preference_cache",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("watermark", sa.Integer(), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_preference_cache_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_preference_cache")),
    )
    op.create_table(
        "sticker_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.Integer(), nullable=False),
        sa.Column("platform_message_id", sa.String(length=64), nullable=True),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("platform_sticker_id", sa.String(length=256), nullable=True),
        sa.Column("emoji", sa.String(length=64), nullable=True),
        sa.Column("set_title", sa.String(length=256), nullable=True),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("image_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_sticker_uses_chat_id_chats"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["image_sha256"], ["blobs.sha256"], name=op.f("fk_sticker_uses_image_sha256_blobs")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sticker_uses_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sticker_uses")),
        sa.UniqueConstraint(
            "chat_id",
            "platform_message_id",
            "item_index",
            name=op.f("uq_sticker_uses_chat_id_platform_message_id_item_index"),
        ),
    )
    with op.batch_alter_table("sticker_uses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sticker_uses_user_id_created_at"), ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("checkpoint_sha256", sa.String(length=64), nullable=True),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["checkpoint_sha256"], ["blobs.sha256"], name=op.f("fk_training_runs_checkpoint_sha256_blobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_runs")),
        sa.UniqueConstraint("version", name=op.f("uq_training_runs_version")),
    )


def downgrade() -> None:
    op.drop_table("training_runs")
    with op.batch_alter_table("sticker_uses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sticker_uses_user_id_created_at"))

    op.drop_table("sticker_uses")
    op.drop_table("preference_cache")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_user_id_created_at"))

    op.drop_table("messages")
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_generations_user_id_created_at"))

    op.drop_table("generations")
    op.drop_table("users")
    op.drop_table("chats")
    op.drop_table("blobs")
