"""Alembic environment: the URL comes from the Config object `kruispunt db upgrade` builds."""

from alembic import context

import integrator.audit
import integrator.outbox
import integrator.replay  # noqa: F401
import repository.applications
import repository.bis
import repository.models
import repository.portal_models
import repository.proposals  # noqa: F401
from integrator.database import make_engine
from repository.base import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
