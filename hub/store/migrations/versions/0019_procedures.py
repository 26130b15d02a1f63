"""Procedures (規程・手順書) and circulated notices (回覧): documents, their versions with the
bytes and SHA-256, read-and-confirm records, a training's required reading, and the
``procedures`` side log.

Revision ID: 0019_procedures
Revises: 0017
Create Date: 2026-12-05

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_procedures"
down_revision = "0018_rollcall"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "procedure_documents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sections", sa.Text, nullable=False, server_default="[]"),
        sa.Column("roles", sa.Text, nullable=False, server_default="[]"),
        sa.Column("employments", sa.Text, nullable=False, server_default="[]"),
        sa.Column("station_kinds", sa.Text, nullable=False, server_default="[]"),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(27), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_procedure_documents"),
        sa.UniqueConstraint("name", name="uq_procedure_documents_name"),
        sa.CheckConstraint("kind IN ('rule', 'procedure', 'notice')", name=op.f("ck_procedure_documents_kind")),
    )
    op.create_table(
        "procedure_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("document_id", sa.Integer,
                  sa.ForeignKey("procedure_documents.id", name="fk_procedure_versions_document_id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("uploaded_at", sa.String(27), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_procedure_versions"),
        sa.UniqueConstraint("document_id", "number", name="uq_procedure_versions_document_id_number"),
    )
    op.create_table(
        "procedure_confirmations",
        sa.Column("version_id", sa.Integer,
                  sa.ForeignKey("procedure_versions.id", name="fk_procedure_confirmations_version_id"),
                  nullable=False),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id", name="fk_procedure_confirmations_person_id"),
                  nullable=False),
        sa.Column("confirmed_at", sa.String(27), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("session_id", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("version_id", "person_id", name="pk_procedure_confirmations"),
        sa.CheckConstraint("via IN ('supervisor', 'rollcall')", name=op.f("ck_procedure_confirmations_via")),
    )
    op.create_index("ix_procedure_confirmations_person_id", "procedure_confirmations", ["person_id"])
    op.create_table(
        "training_procedures",
        sa.Column("training_id", sa.Integer, sa.ForeignKey("trainings.id", name="fk_training_procedures_training_id"),
                  nullable=False),
        sa.Column("version_id", sa.Integer,
                  sa.ForeignKey("procedure_versions.id", name="fk_training_procedures_version_id"), nullable=False),
        sa.PrimaryKeyConstraint("training_id", name="pk_training_procedures"),
    )
    op.execute("INSERT INTO side_heads (part, n, hash) VALUES ('procedures', 0, '" + "0" * 64 + "')")


def downgrade() -> None:
    op.execute("DELETE FROM side_log WHERE part = 'procedures'")
    op.execute("DELETE FROM side_heads WHERE part = 'procedures'")
    op.drop_table("training_procedures")
    op.drop_index("ix_procedure_confirmations_person_id", table_name="procedure_confirmations")
    op.drop_table("procedure_confirmations")
    op.drop_table("procedure_versions")
    op.drop_table("procedure_documents")
