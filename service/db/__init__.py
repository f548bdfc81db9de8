"""Database: SQLModel tables, engine creation, Alembic migrations."""
