"""Database: SQLModel tables, engine creation, Alembic migrations, the one per-patient lock
(``patients``), INSERT ... ON CONFLICT for both dialects (``dialect``), COPY staging, and a
patient's stored history as the clinical core reads it (``patient_history``)."""
