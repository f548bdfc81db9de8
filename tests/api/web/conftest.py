from tests.api.conftest import auth, client, story  # noqa: F401  (shared fixtures)
