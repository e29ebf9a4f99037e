"""sticker_feedback, candidate_images and sticker_packs: what users do with the stickers made for them,
every safe candidate of a generation (🎨 Choose), and the personal packs the bot made for them

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "candidate_images",
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("candidate_index", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_candidate_images_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["sha256"], ["blobs.sha256"], name=op.f("fk_candidate_images_sha256_blobs")),
        sa.PrimaryKeyConstraint("generation_id", "candidate_index", name=op.f("pk_candidate_images")),
    )
    op.create_table(
        "sticker_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.Integer(), nullable=True),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("candidate_index", sa.Integer(), nullable=True),
        sa.Column("weights", sa.JSON(), nullable=True),
        sa.Column("file_id", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('sent', 'another', 'chosen', 'pack', 'inline')",
            name=op.f("ck_sticker_feedback_known_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_sticker_feedback_chat_id_chats"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_sticker_feedback_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sticker_feedback_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sticker_feedback")),
    )
    op.create_index(
        op.f("ix_sticker_feedback_user_id_created_at"), "sticker_feedback", ["user_id", "created_at"]
    )
    op.create_table(
        "sticker_packs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("stickers", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sticker_packs_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sticker_packs")),
        sa.UniqueConstraint("name", name=op.f("uq_sticker_packs_name")),
    )


def downgrade() -> None:
    op.drop_table("sticker_packs")
    op.drop_index(op.f("ix_sticker_feedback_user_id_created_at"), table_name="sticker_feedback")
    op.drop_table("sticker_feedback")
    op.drop_table("candidate_images")
